"""Keeping a big upload: ``persist`` against copying it out.

``python -m benchmarks.persist_bench [--size-mib 256] [--quick] [--backend B]``

A web framework spools an upload into a ``SpooledTemporaryFile``; past its
``max_size`` the data is on disk, in an unnamed temporary file.  Keeping it
under a final name is then either a ``persist`` (on Linux a ``linkat(2)`` of
the ``O_TMPFILE`` descriptor: no byte copied) or a copy:

* ``read+write 1 MiB`` -- what a Starlette handler does today: read the upload
  back through the async API, 1 MiB at a time, and write it to ``dest``
  (opened with ``anyio.open_file``);
* ``shutil.copyfileobj`` -- the standard library's copy, from the spooled
  file's ``wrapped`` file object to ``dest`` opened with ``open()``, in a
  worker thread (as an async application has to run it).

Only the keep step is measured (wall time, and the bytes written during it);
the upload before it is not, and neither is closing the temporary file after
it.  Bytes written come from ``/proc/self/io`` (the whole process, every
thread): ``wchar`` counts the bytes passed to write-like system calls
(``write``, ``pwrite``, ``sendfile``, ...), which is the figure reported as
"bytes written by the process"; ``write_bytes`` counts what the process caused
to be sent to the storage layer, which is 0 on tmpfs and may be low when
writeback is delayed, so it is shown beside it, for what it is worth.  A
handful of ``wchar`` bytes in ``persist`` are the event loop's own wake-ups
(a worker thread writing to the loop's self-pipe or eventfd), not data.

Every ``dest`` is checked against the upload's SHA-256, every round.  The
methods' order is rotated from one round to the next; medians are reported.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

import anyio_tempfile as atf
import anyio_tempfile._create
from anyio_tempfile._file import AsyncSpooledTemporaryFile

MIB = 1 << 20
CHUNK = MIB  # the upload's chunks, and the read+write copy's
MAX_SIZE = MIB  # the spooled file's max_size, as Starlette's UploadFile
TARGET_SPEEDUP = 1000.0

BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


class VerificationError(Exception):
    """A method did not leave exactly the upload's bytes in ``dest``."""


# -- /proc/self/io --------------------------------------------------------------


@dataclass(frozen=True)
class IoCounters:
    wchar: int
    write_bytes: int

    @classmethod
    def now(cls) -> IoCounters:
        fields: dict[str, int] = {}
        with open("/proc/self/io", "rb") as counters:
            for line in counters:
                key, _, value = line.partition(b":")
                fields[key.decode()] = int(value)
        return cls(fields["wchar"], fields["write_bytes"])

    def __sub__(self, other: IoCounters) -> IoCounters:
        return IoCounters(
            self.wchar - other.wchar, self.write_bytes - other.write_bytes
        )


# -- the upload and the three ways of keeping it ----------------------------------


SpooledUpload = AsyncSpooledTemporaryFile[bytes]


async def upload(data: bytes, directory: str) -> SpooledUpload:
    """Spool ``data`` as a framework does, in 1 MiB chunks: rolled over to disk."""
    f = await atf.SpooledTemporaryFile(max_size=MAX_SIZE, dir=directory)
    try:
        view = memoryview(data)
        for offset in range(0, len(data), CHUNK):
            await f.write(view[offset : offset + CHUNK])
        await f.flush()  # the upload is complete: nothing left in the loop
    except BaseException:
        await f.aclose()
        raise
    if not f.rolled:
        await f.aclose()
        raise VerificationError("the upload did not roll over to disk")
    return f


async def keep_by_persist(f: SpooledUpload, dest: str) -> None:
    await f.persist(dest)


async def keep_by_read_write(f: SpooledUpload, dest: str) -> None:
    await f.seek(0)
    async with await anyio.open_file(dest, "wb") as out:
        while chunk := await f.read(CHUNK):
            await out.write(chunk)


async def keep_by_copyfileobj(f: SpooledUpload, dest: str) -> None:
    source = f.wrapped  # flushed by the upload: nothing is pending in the loop

    def copy() -> None:
        source.seek(0)
        with open(dest, "wb") as out:
            shutil.copyfileobj(source, out)

    await anyio.to_thread.run_sync(copy)


async def empty_worker_call(_f: SpooledUpload, _dest: str) -> None:
    await anyio.to_thread.run_sync(lambda: None)


@dataclass(frozen=True)
class Method:
    name: str
    keep: Callable[[SpooledUpload, str], Awaitable[None]]
    # The package's named fallback, O_TMPFILE turned off: persist copies.
    without_o_tmpfile: bool = False
    # False for the reference row, which keeps nothing.
    keeps: bool = True


PERSIST = Method("persist", keep_by_persist)
READ_WRITE = Method("read+write 1 MiB (async)", keep_by_read_write)
COPYFILEOBJ = Method("shutil.copyfileobj", keep_by_copyfileobj)
PERSIST_FALLBACK = Method("persist, no O_TMPFILE", keep_by_persist, True)
# Not a way of keeping anything: the floor under persist, which is one
# worker-thread call, timed at the same moment (right after an upload).
FLOOR = Method("(one empty worker call)", empty_worker_call, keeps=False)
COPIES = (READ_WRITE, COPYFILEOBJ)


# -- measuring -----------------------------------------------------------------------


@dataclass
class Results:
    """Per method: the keep step's seconds and bytes written, one per round."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    wchar: dict[str, list[int]] = field(default_factory=dict)
    write_bytes: dict[str, list[int]] = field(default_factory=dict)
    upload_wchar: list[int] = field(default_factory=list)
    upload_write_bytes: list[int] = field(default_factory=list)
    linked: list[bool] = field(default_factory=list)

    def add(self, method: Method, seconds: float, written: IoCounters) -> None:
        self.seconds.setdefault(method.name, []).append(seconds)
        self.wchar.setdefault(method.name, []).append(written.wchar)
        self.write_bytes.setdefault(method.name, []).append(written.write_bytes)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as kept:
        while block := kept.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


async def measure_once(
    method: Method, data: bytes, digest: str, directory: str, results: Results
) -> None:
    dest = os.path.join(directory, f"kept-{os.getpid()}.bin")
    # Earlier rounds' dirty pages go to disk now, so that no round's copy pays
    # for the writeback of another's.  Not between the upload and the keep step:
    # a handler keeps the upload right after receiving it.
    await anyio.to_thread.run_sync(os.sync)
    real_available = anyio_tempfile._create._o_tmpfile_available
    if method.without_o_tmpfile:
        anyio_tempfile._create._o_tmpfile_available = False
    try:
        before_upload = IoCounters.now()
        f = await upload(data, directory)
        uploaded = IoCounters.now() - before_upload
        try:
            inode = os.fstat(await f.fileno()).st_ino  # rolled: no worker call
            before = IoCounters.now()
            start = time.perf_counter()
            await method.keep(f, dest)
            seconds = time.perf_counter() - start
            written = IoCounters.now() - before
        finally:
            await f.aclose()
    finally:
        anyio_tempfile._create._o_tmpfile_available = real_available
    if method.keeps:
        try:
            kept = await anyio.to_thread.run_sync(sha256_of, dest)
            if kept != digest:
                raise VerificationError(f"{method.name}: dest's SHA-256 is {kept}")
            if method is PERSIST:
                results.linked.append(os.stat(dest).st_ino == inode)
        finally:
            os.unlink(dest)
    results.add(method, seconds, written)
    if method is PERSIST:
        results.upload_wchar.append(uploaded.wchar)
        results.upload_write_bytes.append(uploaded.write_bytes)


async def run_rounds(
    methods: Sequence[Method], size: int, rounds: int, directory: str
) -> Results:
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    results = Results()
    # A warm-up, not recorded: worker threads started, code paths imported.
    warm_up = os.urandom(2 * MAX_SIZE)
    warm_up_digest = hashlib.sha256(warm_up).hexdigest()
    for method in methods:
        await measure_once(method, warm_up, warm_up_digest, directory, Results())
    for round_number in range(rounds):
        shift = round_number % len(methods)
        for method in [*methods[shift:], *methods[:shift]]:
            await measure_once(method, data, digest, directory, results)
    return results


# -- reporting -----------------------------------------------------------------------


def file_system_of(path: str) -> str:
    """The type of the file system ``path`` is on, from /proc/self/mounts."""
    best, kind = "", "unknown"
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                point = fields[1].replace("\\040", " ")
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        pass
    return kind


def human_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def human_bytes(count: float) -> str:
    if abs(count) < 1024:
        return f"{count:.0f} B"
    if abs(count) < MIB:
        return f"{count / 1024:.1f} KiB"
    return f"{count / MIB:.1f} MiB"


def report(
    results: Results,
    methods: Sequence[Method],
    *,
    size: int,
    rounds: int,
    backend: str,
    directory: str,
) -> bool:
    """Print the table, the ratios and the target; whether the target was met."""
    linked = all(results.linked)
    print(
        f"Keeping a {size // MIB} MiB rolled-over SpooledTemporaryFile upload: "
        f"the keep step only, median of {rounds} round(s)"
    )
    print(
        f"python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, backend {backend}, dir {directory} "
        f"({file_system_of(directory)}), persist linked the O_TMPFILE inode: "
        f"{'yes' if linked else 'NO (the file system refused O_TMPFILE)'}"
    )
    print()
    header = (
        f"{'method':<26} {'median':>10} {'min':>10} {'wchar':>16} {'write_bytes':>16}"
    )
    print(header)
    print("-" * len(header))
    for method in methods:
        seconds = results.seconds[method.name]
        wchar = statistics.median(results.wchar[method.name])
        write_bytes = statistics.median(results.write_bytes[method.name])
        print(
            f"{method.name:<26} {human_time(statistics.median(seconds)):>10} "
            f"{human_time(min(seconds)):>10} {wchar:>14.0f} B "
            f"{write_bytes:>14.0f} B"
        )
    upload_wchar = statistics.median(results.upload_wchar)
    upload_write_bytes = statistics.median(results.upload_write_bytes)
    print(
        f"{'(the upload, for scale)':<26} {'':>10} {'':>10} "
        f"{upload_wchar:>14.0f} B {upload_write_bytes:>14.0f} B"
    )
    print()
    print(
        "wchar: bytes passed to write-like system calls by the whole process "
        "(the 'bytes written' figure);"
    )
    print(
        "write_bytes: bytes sent to the storage layer (0 on tmpfs, low when "
        "writeback is delayed). SHA-256 of dest verified every round."
    )
    print()
    persist_time = statistics.median(results.seconds[PERSIST.name])
    persist_wchar = statistics.median(results.wchar[PERSIST.name])
    speedups: dict[str, float] = {}
    for method in methods:
        if method is PERSIST or not method.keeps:
            continue
        speedups[method.name] = (
            statistics.median(results.seconds[method.name]) / persist_time
        )
        print(
            f"{method.name} time / persist time: {speedups[method.name]:,.0f}x "
            f"(wrote {human_bytes(statistics.median(results.wchar[method.name]))}"
            f" vs {human_bytes(persist_wchar)})"
        )
    copies = [name for name in speedups if name in {m.name for m in COPIES}]
    fast_enough = all(speedups[name] >= TARGET_SPEEDUP for name in copies)
    frugal = persist_wchar <= upload_wchar
    print()
    print(
        f"target: persist >= {TARGET_SPEEDUP:,.0f}x faster than the copies: "
        f"{'met' if fast_enough else 'NOT met'}; persist wrote "
        f"{human_bytes(persist_wchar)}, no more than the upload's "
        f"{human_bytes(upload_wchar)}: {'met' if frugal else 'NOT met'}"
    )
    return fast_enough and frugal


# -- the command line -------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.persist_bench",
        description="Time keeping a rolled-over spooled upload: persist against "
        "copying it out, read back in 1 MiB chunks or with shutil.copyfileobj.",
    )
    parser.add_argument(
        "--size-mib",
        type=int,
        default=256,
        help="the upload's size in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a 16 MiB upload, one round"
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds (default: 3, or 1 with --quick)"
    )
    parser.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default="asyncio",
        help="the event loop (default: %(default)s)",
    )
    parser.add_argument(
        "--dir",
        default=tempfile.gettempdir(),
        help="where the upload and dest go (default: %(default)s)",
    )
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="also time persist with O_TMPFILE turned off (the copying fallback)",
    )
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.size_mib = 16
    if arguments.rounds is None:
        arguments.rounds = 1 if arguments.quick else 3
    if arguments.size_mib * MIB <= MAX_SIZE or arguments.rounds < 1:
        parser.error("--size-mib must be at least 2 (past max_size), --rounds 1")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    if not os.path.exists("/proc/self/io"):
        print("persist_bench needs Linux's /proc/self/io", file=sys.stderr)
        return 2
    arguments = parse_arguments(argv)
    size = arguments.size_mib * MIB
    methods: list[Method] = [PERSIST, *COPIES]
    if arguments.fallback:
        methods.append(PERSIST_FALLBACK)
    methods.append(FLOOR)
    backend, options = BACKENDS[arguments.backend]
    # A directory of its own in --dir, removed afterwards.
    with tempfile.TemporaryDirectory(prefix="persist-bench-", dir=arguments.dir) as d:
        results = anyio.run(
            run_rounds,
            methods,
            size,
            arguments.rounds,
            d,
            backend=backend,
            backend_options=options,
        )
    report(
        results,
        methods,
        size=size,
        rounds=arguments.rounds,
        backend=arguments.backend,
        directory=str(Path(arguments.dir).resolve()),
    )
    return 0  # a wrong dest raised VerificationError: the target is only reported


if __name__ == "__main__":
    sys.exit(main())
