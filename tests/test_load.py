"""Load: many files one after another, and thousands open at once, on every backend.

* Ten thousand create/write/read/close cycles (``TemporaryFile``,
  ``NamedTemporaryFile`` and a rolled-over ``SpooledTemporaryFile`` in turn), each
  with bytes of its own, leave no descriptor and no directory entry behind,
  checked every thousand cycles too.
* Two thousand named files open at once (held open together behind a barrier,
  and counted there) each get their own bytes back, and leave nothing behind.
* ``limiter=`` bounds the worker threads busy with the package's work: with a
  ``CapacityLimiter(4)`` at most four, and four reached; with the default one
  (40 tokens) more than four, which shows the measurement can see a violation.
* Two thousand spooled "uploads" sharing a ``SpoolBudget`` hold at most its bytes
  in memory, exactly what the in-memory files hold, and give it all back.

Full size by default; ``ANYIO_TEMPFILE_LOAD_SCALE`` (a float, 1 = full size)
scales the cycles and the files open at once, for a slow machine or a quick run.
"""

from __future__ import annotations

import hashlib
import os
import resource
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
from support import open_descriptors

import anyio_tempfile as atf
from anyio_tempfile._file import AsyncSpooledTemporaryFile, AsyncTemporaryFile
from anyio_tempfile._opener import Opener

pytestmark = pytest.mark.anyio

T = TypeVar("T")


def scaled(full: int, minimum: int) -> int:
    """``full`` times ANYIO_TEMPFILE_LOAD_SCALE (default 1: full size), at least
    ``minimum`` (below it a test could no longer fail for the right reason)."""
    scale = float(os.environ.get("ANYIO_TEMPFILE_LOAD_SCALE", "1"))
    return max(minimum, round(full * scale))


#: Create/write/read/close cycles, the file kinds in turn, one after another.
CYCLES = scaled(10_000, 300)
#: Every this many cycles, check that no descriptor or entry has piled up.
CHECK_EVERY = 1_000 if CYCLES >= 3_000 else 100
#: Files open at once in the concurrent tests.
CONCURRENT = scaled(2_000, 200)
#: Tokens of the limiter whose bound is measured.
TOKENS = 4
#: How long a worker call is held, so that calls overlap observably.
HOLD = 0.0002
#: A stuck load fails after this long rather than hanging the run.
TIMEOUT = 300

#: A spooled file in the cycles gets this max_size; every payload is larger, so
#: its first write rolls it over to disk.
SPOOL_MAX_SIZE = 16
#: Every BIG_EVERY-th payload is BIG bytes: past the in-loop buffers (8 KiB), so
#: it goes straight to a worker; the others are 32 to 231 bytes.
BIG_EVERY = 100
BIG = 64 * 1024 + 1

#: The uploads share a budget of BUDGET bytes.  Every other one is small (64 to
#: 255 bytes, one write); the others write CHUNKS chunks of CHUNK bytes, with
#: the other uploads' writes in between.  Together they write about eight times
#: BUDGET, so the budget fills in the first round of writes: the small uploads
#: that got in by then stay in memory, and every large one rolls over.
BUDGET = 256 * CONCURRENT
CHUNKS = 4
CHUNK = 1024

#: Descriptors to spare beyond CONCURRENT and those open already.
HEADROOM = 256
#: The soft RLIMIT_NOFILE is raised to at most this (never above the hard one).
RAISED_SOFT_LIMIT = 8192

Kind = Literal["TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile"]
KINDS: tuple[Kind, ...] = (
    "TemporaryFile",
    "NamedTemporaryFile",
    "SpooledTemporaryFile",
)
AnyOpener: TypeAlias = (
    "Opener[AsyncTemporaryFile[bytes]] | Opener[AsyncSpooledTemporaryFile[bytes]]"
)


def payload(tag: str, index: int, size: int | None = None) -> bytes:
    """Bytes that only file ``index`` of ``tag`` writes: its header, then its own
    pattern.  ``size`` bytes; by default every BIG_EVERY-th one large."""
    header = f"{tag}#{index};".encode()
    if size is None:
        size = BIG if index % BIG_EVERY == 0 else 32 + index % 200
    pattern = hashlib.blake2b(header).digest()
    data = header + pattern * (size // len(pattern) + 1)
    return data[:size]


def constructor(
    kind: Kind, directory: Path, limiter: anyio.CapacityLimiter | None
) -> AnyOpener:
    """A file of ``kind`` in ``directory``; a spooled one rolls over at once."""
    if kind == "TemporaryFile":
        return atf.TemporaryFile(dir=directory, limiter=limiter)
    if kind == "NamedTemporaryFile":
        return atf.NamedTemporaryFile(dir=directory, limiter=limiter)
    return atf.SpooledTemporaryFile(SPOOL_MAX_SIZE, dir=directory, limiter=limiter)


def exists(path: str) -> bool:
    return os.path.exists(path)


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


async def write_and_check(file: AsyncTemporaryFile[bytes], data: bytes) -> None:
    assert await file.write(data) == len(data)
    if isinstance(file, AsyncSpooledTemporaryFile):
        assert file.rolled, "a write past max_size must roll the file over"


async def read_back(file: AsyncTemporaryFile[bytes], data: bytes) -> None:
    assert await file.seek(0) == 0
    assert await file.read() == data


async def cycle(kind: Kind, index: int, directory: Path) -> None:
    """One file's life: create, write its bytes, read them back, close."""
    data = payload(kind, index)
    async with constructor(kind, directory, None) as file:
        await write_and_check(file, data)
        if kind == "NamedTemporaryFile":
            assert exists(file.name)
        await read_back(file, data)
    assert file.closed
    if kind == "NamedTemporaryFile":
        assert not exists(file.name)


async def test_many_cycles_leave_nothing_behind(scratch_dir: Path) -> None:
    before = open_descriptors()
    for index in range(CYCLES):
        await cycle(KINDS[index % len(KINDS)], index, scratch_dir)
        if (index + 1) % CHECK_EVERY == 0:
            grown = open_descriptors() - before
            assert not grown, f"after {index + 1} cycles: open {sorted(grown)}"
            assert listing(scratch_dir) == [], f"after {index + 1} cycles"
    assert open_descriptors() - before == set()
    assert listing(scratch_dir) == []


@pytest.fixture
def descriptor_room() -> Iterator[None]:
    """Room for CONCURRENT more descriptors: the soft limit raised if need be."""
    needed = CONCURRENT + len(os.listdir("/proc/self/fd")) + HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        yield
        return
    raised = (
        RAISED_SOFT_LIMIT
        if hard == resource.RLIM_INFINITY
        else min(hard, RAISED_SOFT_LIMIT)
    )
    if raised < needed:
        pytest.skip(
            f"{CONCURRENT} files at once need {needed} descriptors; "
            f"RLIMIT_NOFILE allows {soft} (hard limit {hard})"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def kinds_of(kinds: tuple[Kind, ...]) -> list[Kind]:
    """The kind of each file of a concurrent load: ``kinds`` in turn."""
    return [kinds[index % len(kinds)] for index in range(CONCURRENT)]


class Barrier:
    """Holds CONCURRENT tasks until every one has arrived and the test looked."""

    def __init__(self) -> None:
        self.arrived = 0
        self.all_arrived = anyio.Event()
        self.released = anyio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived == CONCURRENT:
            self.all_arrived.set()
        await self.released.wait()


async def all_at_once(
    task: Callable[[int, Barrier], Coroutine[Any, Any, None]], look: Callable[[], T]
) -> T:
    """Run ``task(index, barrier)`` for every index, each in its own task, and
    ``look()`` while they all wait at the barrier; its result."""
    barrier = Barrier()
    seen: list[T] = []
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            for index in range(CONCURRENT):
                group.start_soon(task, index, barrier)
            await barrier.all_arrived.wait()
            seen.append(look())
            barrier.released.set()
    return seen[0]


@dataclass(frozen=True)
class Peak:
    """What was there while every file of a load was open at once."""

    entries: list[str]
    descriptors: set[int]
    names: list[str]


async def concurrent_load(
    directory: Path,
    kinds: tuple[Kind, ...],
    limiter: anyio.CapacityLimiter | None,
    before: set[int],
) -> Peak:
    """CONCURRENT files open at once, of ``kinds`` in turn.

    Each writes its bytes, waits at the barrier while the directory and the
    descriptors are counted, then reads its bytes back and closes.
    """
    names: list[str] = []
    kind_of = kinds_of(kinds)

    async def one(index: int, barrier: Barrier) -> None:
        kind = kind_of[index]
        data = payload("concurrent", index)
        async with constructor(kind, directory, limiter) as file:
            await write_and_check(file, data)
            if kind == "NamedTemporaryFile":
                names.append(os.path.basename(file.name))
            await barrier.wait()
            await read_back(file, data)
        assert file.closed

    def look() -> Peak:
        return Peak(listing(directory), open_descriptors() - before, sorted(names))

    return await all_at_once(one, look)


async def test_thousands_of_named_files_at_once(
    scratch_dir: Path, descriptor_room: None
) -> None:
    before = open_descriptors()
    peak = await concurrent_load(scratch_dir, ("NamedTemporaryFile",), None, before)
    assert len(peak.entries) == CONCURRENT
    assert peak.entries == peak.names
    assert len(peak.descriptors) >= CONCURRENT
    assert open_descriptors() - before == set()
    assert listing(scratch_dir) == []


@dataclass
class WorkerSpy:
    """Counts the worker threads busy with the package's work at once.

    Stands in for ``anyio.to_thread.run_sync`` (the package looks it up on the
    module at call time): each call's work is wrapped so that a thread-safe
    counter is up while it runs, held for HOLD seconds so that overlaps show.
    It also watches ``os.open`` and ``os.unlink`` (creation, named deletion):
    each must run inside such wrapped work, or the count would miss work done
    elsewhere.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    busy: int = 0
    max_busy: int = 0
    calls: int = 0
    threads: set[int] = field(default_factory=set)
    limiters: list[anyio.CapacityLimiter | None] = field(default_factory=list)
    inside: threading.local = field(default_factory=threading.local)
    os_calls_inside: int = 0
    os_calls_outside: list[str] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> WorkerSpy:
        real_run_sync = anyio.to_thread.run_sync
        monkeypatch.setattr(anyio.to_thread, "run_sync", self._run_sync(real_run_sync))
        for name in ("open", "unlink"):
            monkeypatch.setattr(os, name, self._watched(getattr(os, name)))
        return self

    def _run_sync(self, real: Callable[..., Any]) -> Callable[..., Any]:
        spy = self

        async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            spy.limiters.append(kwargs.get("limiter"))

            def measured() -> Any:
                with spy.lock:
                    spy.busy += 1
                    spy.calls += 1
                    spy.max_busy = max(spy.max_busy, spy.busy)
                    spy.threads.add(threading.get_ident())
                spy.inside.active = True
                try:
                    time.sleep(HOLD)
                    return func(*args)
                finally:
                    spy.inside.active = False
                    with spy.lock:
                        spy.busy -= 1

            return await real(measured, **kwargs)

        return run_sync

    def _watched(self, real: Callable[..., Any]) -> Callable[..., Any]:
        spy = self

        def watched(*args: Any, **kwargs: Any) -> Any:
            with spy.lock:
                if getattr(spy.inside, "active", False):
                    spy.os_calls_inside += 1
                else:
                    spy.os_calls_outside.append(f"{real.__name__}{args!r}")
            return real(*args, **kwargs)

        return watched


@pytest.mark.parametrize("tokens", [TOKENS, None], ids=["limiter=4", "default"])
async def test_limiter_bounds_the_busy_worker_threads(
    tokens: int | None,
    scratch_dir: Path,
    descriptor_room: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limiter = None if tokens is None else anyio.CapacityLimiter(tokens)
    default_tokens = anyio.to_thread.current_default_thread_limiter().total_tokens
    before = open_descriptors()
    spy = WorkerSpy().install(monkeypatch)
    # Every kind, so that creation, rollover, reads, writes and closes all count.
    peak = await concurrent_load(scratch_dir, KINDS, limiter, before)
    monkeypatch.undo()

    named = sum(kind == "NamedTemporaryFile" for kind in kinds_of(KINDS))
    assert len(peak.descriptors) >= CONCURRENT
    assert len(peak.entries) == len(peak.names) == named
    assert spy.os_calls_outside == []
    assert spy.os_calls_inside >= CONCURRENT  # every file was created in there
    assert threading.get_ident() not in spy.threads
    assert len(spy.threads) >= spy.max_busy
    # Each file: creation (a spooled file's rollover), the read's and the
    # close's calls at least.
    assert spy.calls >= 3 * CONCURRENT
    if limiter is None:
        assert set(spy.limiters) == {None}
        assert TOKENS < spy.max_busy <= default_tokens
    else:
        assert spy.max_busy == TOKENS
        assert all(seen is limiter for seen in spy.limiters)
        statistics = limiter.statistics()
        assert statistics.borrowed_tokens == 0
        assert statistics.tasks_waiting == 0
    assert open_descriptors() - before == set()
    assert listing(scratch_dir) == []


@dataclass(frozen=True)
class BudgetPeak:
    """The budget and the uploads while every upload was open at once."""

    in_use: int
    in_memory: int  # bytes of the uploads still in memory
    small_in_memory: int  # how many small uploads are in memory
    rolled: int  # how many uploads rolled over
    descriptors: set[int]


async def test_thousands_of_uploads_share_a_budget(
    scratch_dir: Path, descriptor_room: None
) -> None:
    budget = atf.SpoolBudget(BUDGET)
    before = open_descriptors()
    uploads: list[tuple[AsyncSpooledTemporaryFile[bytes], bytes]] = []

    async def upload(index: int, barrier: Barrier) -> None:
        large = index % 2 == 1
        size = CHUNKS * CHUNK if large else 64 + index % 192
        data = payload("upload", index, size)
        async with atf.SpooledTemporaryFile(dir=scratch_dir, budget=budget) as file:
            for start in range(0, size, CHUNK):
                await file.write(data[start : start + CHUNK])
                # Let the other uploads write in between, as from the network.
                await anyio.lowlevel.checkpoint()
            assert file.rolled or not large
            uploads.append((file, data))
            await barrier.wait()
            await read_back(file, data)
        assert file.closed

    def look() -> BudgetPeak:
        in_memory = [data for file, data in uploads if not file.rolled]
        return BudgetPeak(
            in_use=budget.in_use,
            in_memory=sum(map(len, in_memory)),
            small_in_memory=sum(len(data) < CHUNK for data in in_memory),
            rolled=len(uploads) - len(in_memory),
            descriptors=open_descriptors() - before,
        )

    peak = await all_at_once(upload, look)
    assert peak.in_use == peak.in_memory <= BUDGET
    assert peak.rolled >= CONCURRENT // 2, "every large upload rolls over"
    assert peak.small_in_memory > 0, "the small uploads that fit stay in memory"
    assert len(peak.descriptors) >= peak.rolled
    assert budget.in_use == 0
    # A write was refused (a large upload rolled over): it did not fit then.
    assert BUDGET - CHUNK < budget.peak <= BUDGET
    assert open_descriptors() - before == set()
    assert listing(scratch_dir) == []
