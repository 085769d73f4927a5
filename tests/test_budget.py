"""SpoolBudget: one memory limit shared by many spooled files, counted exactly.

API.md, "Beyond the standard library": ``SpoolBudget(max_bytes)`` takes an
``int >= 0`` (negative: ``ValueError``; anything else, ``bool`` included:
``TypeError``).  All spooled files sharing a budget hold at most ``max_bytes`` in
memory together, counted in bytes of the in-memory buffer (text counted encoded);
a write that would overdraw it rolls that file over first; ``max_size`` still
applies, whichever is hit first; memory goes back on rollover, truncate and close,
whatever ended the file (error, cancellation, garbage collection); ``in_use`` and
``peak`` report it exactly.
"""

from __future__ import annotations

import array
import asyncio
import errno
import gc
import io
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.lowlevel
import pytest
from support import open_descriptors

import anyio_tempfile as atf
import anyio_tempfile._create
import anyio_tempfile._spooled

pytestmark = pytest.mark.anyio


KiB = 1024

#: The many-files tests: this many spooled files at once, sharing BUDGET bytes,
#: each with its own max_size of MAX_SIZE, written in 1..MAX_WRITES chunks of
#: 1..MAX_CHUNK random bytes; every BIG_EVERY-th file also writes one chunk of
#: MAX_SIZE bytes.  So some files stay in memory, some roll over because of the
#: budget and some because of max_size.
FILE_COUNT = 1000
BUDGET = 256 * KiB
MAX_SIZE = 64 * KiB
MAX_WRITES = 4
MAX_CHUNK = 8 * KiB
BIG_EVERY = 20
SEED = 20240607

#: Random bytes that chunks are sliced from (making them costs nothing per write).
POOL = random.Random(SEED).randbytes(2 * MAX_SIZE)


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def encoded_size(text: str, encoding: str, newline: str | None) -> int:
    """What the standard library's text layer puts in a BytesIO for ``text``."""
    raw = io.BytesIO()
    wrapper = io.TextIOWrapper(raw, encoding=encoding, newline=newline)
    wrapper.write(text)
    wrapper.flush()
    size = raw.getbuffer().nbytes
    wrapper.detach()
    return size


# -- the constructor ---------------------------------------------------------


def test_zero_and_positive_max_bytes_are_accepted() -> None:
    assert atf.SpoolBudget(0).max_bytes == 0
    assert atf.SpoolBudget(10**12).max_bytes == 10**12


def test_fresh_budget_has_nothing_in_use_and_no_peak() -> None:
    budget = atf.SpoolBudget(100)
    assert (budget.in_use, budget.peak) == (0, 0)


@pytest.mark.parametrize("max_bytes", [-1, -(2**70)])
def test_negative_max_bytes_is_value_error(max_bytes: int) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        atf.SpoolBudget(max_bytes)


@pytest.mark.parametrize(
    "max_bytes",
    [1.0, 1.5, "1", b"1", None, True, False],
    ids=["float", "fraction", "str", "bytes", "None", "True", "False"],
)
def test_non_int_max_bytes_is_type_error(max_bytes: Any) -> None:
    # bool is an int subclass, but API.md asks for "an int >= 0": True is not a
    # byte count, and the package refuses it.
    with pytest.raises(TypeError, match="max_bytes"):
        atf.SpoolBudget(max_bytes)


def test_budget_that_is_not_a_spool_budget_is_type_error() -> None:
    with pytest.raises(TypeError, match="budget"):
        atf.SpooledTemporaryFile(budget=100)  # type: ignore[call-overload]


# -- exact accounting, one file ----------------------------------------------


async def test_binary_write_counts_its_exact_bytes(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"x" * 123)
        assert budget.in_use == 123
        await f.write(b"y" * 7)
        assert (budget.in_use, budget.peak) == (130, 130)
        assert not f.rolled


async def test_buffer_protocol_write_counts_bytes_not_items(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    items = array.array("I", [1, 2, 3])
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(items)
        assert budget.in_use == items.itemsize * 3
        await f.write(memoryview(b"abcd")[1:3])
        assert budget.in_use == items.itemsize * 3 + 2


async def test_writelines_counts_every_piece(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.writelines([b"ab", b"cde", b""])
        assert budget.in_use == 5


async def test_empty_write_holds_nothing(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(0)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        assert await f.write(b"") == 0
        assert (budget.in_use, f.rolled) == (0, False)


async def test_text_is_counted_encoded(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(
        mode="w+", encoding="utf-8", dir=no_leaks, budget=budget
    ) as f:
        await f.write("é" * 10)
        assert budget.in_use == 20


@pytest.mark.parametrize(
    ("encoding", "newline", "text"),
    [
        ("utf-8", "\r\n", "a\nb\n"),
        ("utf-8", None, "line one\nline two\n"),
        ("utf-16", None, "ab"),
        ("utf-16-le", "", "ab\r\n"),
        ("utf-32", "\r", "x\ny"),
        ("latin-1", None, "café"),
        ("utf-8", None, "€𝄞"),
    ],
    ids=[
        "crlf",
        "default-newline",
        "utf16-bom",
        "utf16le",
        "utf32-cr",
        "latin1",
        "wide",
    ],
)
async def test_text_is_counted_as_the_buffer_holds_it(
    no_leaks: Path, encoding: str, newline: str | None, text: str
) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(
        mode="w+", encoding=encoding, newline=newline, dir=no_leaks, budget=budget
    ) as f:
        await f.write(text)
        assert budget.in_use == encoded_size(text, encoding, newline)
        await f.write(text)
        assert budget.in_use == encoded_size(text + text, encoding, newline)


async def test_failed_text_encoding_leaves_the_count_exact(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(
        mode="w+", encoding="ascii", dir=no_leaks, budget=budget
    ) as f:
        await f.write("abc")
        with pytest.raises(UnicodeEncodeError):
            await f.write("é")
        assert budget.in_use == 3
        await f.seek(0)
        assert await f.read() == "abc"


async def test_overwrite_in_the_middle_does_not_grow_it(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"a" * 100)
        await f.seek(10)
        await f.write(b"b" * 20)
        assert budget.in_use == 100
        await f.seek(0)
        assert await f.read() == b"a" * 10 + b"b" * 20 + b"a" * 70


async def test_overwrite_across_the_end_grows_it_by_the_overhang(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"a" * 100)
        await f.seek(90)
        await f.write(b"b" * 20)
        assert budget.in_use == 110


async def test_write_past_the_end_counts_the_gap(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.seek(500)
        await f.write(b"x")
        assert budget.in_use == 501
        assert not f.rolled


async def test_seek_past_the_end_and_write_over_budget_rolls_over(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(100)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"abc")
        await f.seek(200)
        await f.write(b"x")
        assert (f.rolled, budget.in_use) == (True, 0)
        await f.seek(0)
        assert await f.read() == b"abc" + b"\0" * 197 + b"x"


@pytest.mark.parametrize("size", [0, 1, 40, 99])
async def test_truncate_shrinks_in_use_to_the_new_size(
    no_leaks: Path, size: int
) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(max_size=500, dir=no_leaks, budget=budget) as f:
        await f.write(b"z" * 100)
        assert await f.truncate(size) == size
        assert (budget.in_use, budget.peak, f.rolled) == (size, 100, False)


async def test_bare_truncate_shrinks_in_use_to_the_position(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(max_size=500, dir=no_leaks, budget=budget) as f:
        await f.write(b"z" * 100)
        await f.seek(30)
        assert await f.truncate() == 30
        assert budget.in_use == 30


async def test_truncate_frees_room_for_later_writes(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(100)
    async with atf.SpooledTemporaryFile(max_size=500, dir=no_leaks, budget=budget) as f:
        await f.write(b"z" * 90)
        await f.truncate(10)
        await f.seek(10)  # truncate leaves the position at 90
        await f.write(b"y" * 80)  # ends at 90, within the budget
        assert (f.rolled, budget.in_use) == (False, 90)


async def test_text_truncate_shrinks_in_use(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(
        max_size=500, mode="w+", encoding="utf-8", dir=no_leaks, budget=budget
    ) as f:
        await f.write("é" * 10)
        await f.truncate(4)
        assert budget.in_use == 4


async def test_rollover_returns_the_files_share(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"q" * 100)
        await f.rollover()
        assert (f.rolled, budget.in_use, budget.peak) == (True, 0, 100)
        await f.write(b"r" * 2000)  # on disk: not counted at all
        assert budget.in_use == 0
        await f.seek(0)
        assert await f.read() == b"q" * 100 + b"r" * 2000


async def test_fileno_rollover_returns_the_files_share(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"q" * 100)
        await f.fileno()
        assert (f.rolled, budget.in_use) == (True, 0)


async def test_close_returns_the_files_share(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    f = await atf.SpooledTemporaryFile(dir=no_leaks, budget=budget)
    await f.write(b"q" * 100)
    await f.aclose()
    assert (budget.in_use, budget.peak) == (0, 100)


async def test_async_with_exit_by_error_returns_the_files_share(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(1000)
    with pytest.raises(LookupError):  # noqa: PT012 - the body
        async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
            await f.write(b"q" * 100)
            raise LookupError
    assert budget.in_use == 0


async def test_cancelled_block_returns_the_files_share(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    with anyio.CancelScope() as scope:
        async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
            await f.write(b"q" * 100)
            scope.cancel()
            await f.write(b"never")
    assert scope.cancelled_caught
    assert budget.in_use == 0


async def test_garbage_collection_of_an_unclosed_file_returns_its_share(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(1000)
    f = await atf.SpooledTemporaryFile(dir=no_leaks, budget=budget)
    await f.write(b"q" * 100)
    assert budget.in_use == 100
    with pytest.warns(ResourceWarning, match="unclosed"):  # noqa: PT031
        del f
        gc.collect()
    assert budget.in_use == 0


async def test_garbage_collection_of_a_rolled_file_keeps_the_count_at_zero(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(1000)
    other = await atf.SpooledTemporaryFile(dir=no_leaks, budget=budget)
    await other.write(b"o" * 10)
    f = await atf.SpooledTemporaryFile(dir=no_leaks, budget=budget)
    await f.write(b"q" * 100)
    await f.rollover()
    with pytest.warns(ResourceWarning, match="unclosed"):  # noqa: PT031
        del f
        gc.collect()
    assert budget.in_use == 10  # the other file's share, and nothing else
    await other.aclose()
    assert budget.in_use == 0


async def test_closing_twice_returns_the_share_once(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    keeper = await atf.SpooledTemporaryFile(dir=no_leaks, budget=budget)
    await keeper.write(b"k" * 30)
    f = await atf.SpooledTemporaryFile(dir=no_leaks, budget=budget)
    await f.write(b"q" * 100)
    await f.aclose()
    await f.aclose()
    assert budget.in_use == 30
    await keeper.aclose()
    assert budget.in_use == 0


# -- rolling over because of the budget --------------------------------------


async def test_write_that_would_overdraw_rolls_that_file_over(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(100)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"a" * 60)
        assert not f.rolled
        assert await f.write(b"b" * 60) == 60
        assert (f.rolled, budget.in_use, budget.peak) == (True, 0, 60)
        assert await f.tell() == 120
        await f.seek(0)
        assert await f.read() == b"a" * 60 + b"b" * 60


async def test_write_that_fills_the_budget_exactly_stays_in_memory(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(100)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"a" * 100)
        assert (f.rolled, budget.in_use) == (False, 100)
        await f.write(b"b")
        assert (f.rolled, budget.in_use) == (True, 0)


async def test_text_write_that_would_overdraw_rolls_over_intact(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(15)
    async with atf.SpooledTemporaryFile(
        mode="w+", encoding="utf-8", dir=no_leaks, budget=budget
    ) as f:
        await f.write("é" * 6)  # 12 bytes
        assert (f.rolled, budget.in_use) == (False, 12)
        await f.write("ü" * 2)  # 4 more: 16 > 15
        assert (f.rolled, budget.in_use) == (True, 0)
        await f.seek(0)
        assert await f.read() == "é" * 6 + "ü" * 2


async def test_zero_budget_sends_every_write_to_disk(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(0)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"a")
        assert (f.rolled, budget.in_use, budget.peak) == (True, 0, 0)


async def test_max_size_rolls_over_first_when_the_budget_has_room(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(10_000)
    async with atf.SpooledTemporaryFile(max_size=50, dir=no_leaks, budget=budget) as f:
        await f.write(b"a" * 50)
        assert (f.rolled, budget.in_use) == (False, 50)
        await f.write(b"b")
        assert (f.rolled, budget.in_use) == (True, 0)
        await f.seek(0)
        assert await f.read() == b"a" * 50 + b"b"


async def test_budget_rolls_over_first_when_below_max_size(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(50)
    async with atf.SpooledTemporaryFile(
        max_size=10_000, dir=no_leaks, budget=budget
    ) as f:
        await f.write(b"a" * 60)
        assert (f.rolled, budget.in_use, budget.peak) == (True, 0, 0)
        await f.seek(0)
        assert await f.read() == b"a" * 60


async def test_without_max_size_only_the_budget_rolls_over(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(300 * KiB)
    async with atf.SpooledTemporaryFile(max_size=0, dir=no_leaks, budget=budget) as f:
        for _ in range(299):
            await f.write(b"k" * KiB)
        assert (f.rolled, budget.in_use) == (False, 299 * KiB)
        await f.write(b"k" * KiB)
        assert (f.rolled, budget.in_use) == (False, 300 * KiB)
        await f.write(b"!")
        assert (f.rolled, budget.in_use) == (True, 0)


async def test_second_file_rolls_over_when_the_first_holds_most(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(100)
    async with (
        atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as first,
        atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as second,
    ):
        await first.write(b"1" * 90)
        await second.write(b"2" * 10)
        assert (first.rolled, second.rolled, budget.in_use) == (False, False, 100)
        await second.write(b"2")
        assert (first.rolled, second.rolled, budget.in_use) == (False, True, 90)
        await second.seek(0)
        assert await second.read() == b"2" * 11
        await first.seek(0)
        assert await first.read() == b"1" * 90


async def test_memory_given_back_by_one_file_is_usable_by_another(
    no_leaks: Path,
) -> None:
    budget = atf.SpoolBudget(100)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as second:
        async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as first:
            await first.write(b"1" * 90)
        await second.write(b"2" * 100)
        assert (second.rolled, budget.in_use, budget.peak) == (False, 100, 100)


async def test_peak_reports_the_most_held_at_once(no_leaks: Path) -> None:
    budget = atf.SpoolBudget(1000)
    async with (
        atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as first,
        atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as second,
    ):
        await first.write(b"1" * 300)
        await second.write(b"2" * 200)
        await first.truncate(0)
        await second.write(b"2" * 100)
        assert (budget.in_use, budget.peak) == (300, 500)
    assert (budget.in_use, budget.peak) == (0, 500)


# -- a failing rollover --------------------------------------------------------


class _FullDisk:
    """A file whose writes fail with ENOSPC; everything else is the real file's."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def writelines(self, lines: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    @property
    def buffer(self) -> _FullDisk:
        return _FullDisk(self._file.buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


@dataclass
class DiskFiller:
    """Stands in for ``open_file`` in ``_spooled``: every ``every``-th file is full."""

    every: int
    real: Callable[..., anyio_tempfile._create.OpenedFile]
    calls: int = 0
    full: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, parts: Any, options: Any, kind: anyio_tempfile._create.FileKind
    ) -> anyio_tempfile._create.OpenedFile:
        opened = self.real(parts, options, kind)
        with self.lock:
            self.calls += 1
            if self.calls % self.every:
                return opened
            self.full += 1
        proxy: IO[Any] = _FullDisk(opened.file)  # type: ignore[assignment]
        return anyio_tempfile._create.OpenedFile(proxy, opened.path, opened.linkable)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], DiskFiller]:
    def install(every: int) -> DiskFiller:
        filler = DiskFiller(every, anyio_tempfile._create.open_file)
        monkeypatch.setattr(anyio_tempfile._spooled, "open_file", filler)
        return filler

    return install


async def test_rollover_failing_with_enospc_keeps_the_data_and_its_share(
    no_leaks: Path, full_disk: Callable[[int], DiskFiller]
) -> None:
    full_disk(1)
    budget = atf.SpoolBudget(100)
    async with atf.SpooledTemporaryFile(dir=no_leaks, budget=budget) as f:
        await f.write(b"a" * 60)
        with pytest.raises(OSError, match="No space") as caught:
            await f.write(b"b" * 60)
        assert caught.value.errno == errno.ENOSPC
        assert (f.rolled, budget.in_use, await f.tell()) == (False, 60, 60)
        await f.seek(0)
        assert await f.read() == b"a" * 60
    assert budget.in_use == 0


async def test_text_rollover_failing_with_enospc_keeps_the_data_and_its_share(
    no_leaks: Path, full_disk: Callable[[int], DiskFiller]
) -> None:
    full_disk(1)
    budget = atf.SpoolBudget(10)
    async with atf.SpooledTemporaryFile(
        mode="w+", encoding="utf-8", dir=no_leaks, budget=budget
    ) as f:
        await f.write("é" * 4)
        with pytest.raises(OSError, match="No space"):
            await f.write("é" * 4)
        assert (f.rolled, budget.in_use) == (False, 8)
        await f.seek(0)
        assert await f.read() == "é" * 4
    assert budget.in_use == 0


# -- many files at once --------------------------------------------------------


@dataclass
class Crowd:
    """What the many-files tests observed, across all their files."""

    budget: atf.SpoolBudget
    over_budget: list[int] = field(default_factory=list)
    in_memory_sizes: dict[int, int] = field(default_factory=dict)
    rolled_by_budget: int = 0
    rolled_by_size: int = 0
    cancelled: set[int] = field(default_factory=set)
    disk_full: int = 0
    finished: set[int] = field(default_factory=set)  # read back intact

    def after_write(self) -> None:
        if self.budget.in_use > self.budget.max_bytes:
            self.over_budget.append(self.budget.in_use)


def chunks_for(index: int) -> list[bytes]:
    rng = random.Random(SEED + index)
    pieces: list[bytes] = []
    for _ in range(rng.randint(1, MAX_WRITES)):
        size = rng.randint(1, MAX_CHUNK)
        start = rng.randrange(len(POOL) - size)
        pieces.append(POOL[start : start + size])
    if index % BIG_EVERY == 0:
        pieces.insert(rng.randrange(len(pieces) + 1), POOL[:MAX_SIZE])
    return pieces


async def write_one_file(
    crowd: Crowd,
    index: int,
    directory: Path,
    *,
    hold: anyio.Event | None = None,
    all_written: Callable[[], None] | None = None,
) -> None:
    """Write ``chunks_for(index)`` to a spooled file, checking after each write.

    A file that stays in memory waits (still open) for ``hold`` if given, after
    calling ``all_written`` (the last one to finish writing lets the test look).
    """
    written = bytearray()
    async with atf.SpooledTemporaryFile(
        max_size=MAX_SIZE, dir=directory, budget=crowd.budget
    ) as f:
        try:
            for chunk in chunks_for(index):
                try:
                    await f.write(chunk)
                finally:
                    crowd.after_write()
                written += chunk
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            crowd.disk_full += 1
            assert not f.rolled
            assert await f.tell() == len(written)
        await f.seek(0)
        assert await f.read() == written, f"file {index}: data not intact"
        if not f.rolled:
            crowd.in_memory_sizes[index] = len(written)
        elif len(written) > MAX_SIZE:
            crowd.rolled_by_size += 1
        else:
            crowd.rolled_by_budget += 1
        crowd.finished.add(index)
        if all_written is not None:
            all_written()
        if hold is not None and not f.rolled:
            await hold.wait()


def check_everything_given_back(
    crowd: Crowd, directory: Path, descriptors_before: set[int]
) -> None:
    budget = crowd.budget
    assert crowd.over_budget == [], "in_use above max_bytes after a write"
    assert 0 < budget.peak <= budget.max_bytes
    assert budget.in_use == 0
    assert open_descriptors() - descriptors_before == set()
    assert listing(directory) == []


async def test_thousand_files_never_hold_more_than_the_budget(
    scratch_dir: Path,
) -> None:
    before = open_descriptors()
    crowd = Crowd(atf.SpoolBudget(BUDGET))
    hold = anyio.Event()
    observed: list[int] = []

    def all_written() -> None:
        if len(crowd.finished) == FILE_COUNT:
            observed.append(crowd.budget.in_use)
            hold.set()

    async def write_held_file(index: int) -> None:
        await write_one_file(
            crowd, index, scratch_dir, hold=hold, all_written=all_written
        )

    async with anyio.create_task_group() as tg:
        for index in range(FILE_COUNT):
            tg.start_soon(write_held_file, index)
    # Exactly what the files still in memory hold, once every write is done.
    assert observed == [sum(crowd.in_memory_sizes.values())]
    # The sizes were chosen so that every way of ending up was taken.
    assert crowd.in_memory_sizes
    assert crowd.rolled_by_budget > 0
    assert crowd.rolled_by_size > 0
    check_everything_given_back(crowd, scratch_dir, before)


async def test_thousand_files_with_half_cancelled_by_scope_give_everything_back(
    scratch_dir: Path,
) -> None:
    before = open_descriptors()
    crowd = Crowd(atf.SpoolBudget(BUDGET))

    async def victim(index: int, delay: int) -> None:
        with anyio.CancelScope() as scope:
            tg.start_soon(killer, scope, delay)
            await write_one_file(crowd, index, scratch_dir)
        if scope.cancelled_caught:
            crowd.cancelled.add(index)

    async def killer(scope: anyio.CancelScope, delay: int) -> None:
        for _ in range(delay):
            await anyio.lowlevel.checkpoint()
        scope.cancel()

    rng = random.Random(SEED)
    async with anyio.create_task_group() as tg:
        for index in range(FILE_COUNT):
            if index % 2:
                tg.start_soon(victim, index, rng.randint(0, 40))
            else:
                tg.start_soon(write_one_file, crowd, index, scratch_dir)
    # Enough were cut off mid-write (some only as they closed), all others ended.
    assert len(crowd.cancelled - crowd.finished) > FILE_COUNT // 10
    assert crowd.finished | crowd.cancelled == set(range(FILE_COUNT))
    check_everything_given_back(crowd, scratch_dir, before)


async def test_thousand_files_with_half_cancelled_natively_give_everything_back(
    scratch_dir: Path, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    if anyio_backend[0] != "asyncio":
        pytest.skip("Task.cancel() is asyncio's")
    before = open_descriptors()
    crowd = Crowd(atf.SpoolBudget(BUDGET))

    async def killer(task: asyncio.Task[None], delay: int) -> None:
        for _ in range(delay):
            await asyncio.sleep(0)
        task.cancel()

    rng = random.Random(SEED)
    tasks: list[asyncio.Task[None]] = []
    killers: list[asyncio.Task[None]] = []
    for index in range(FILE_COUNT):
        task = asyncio.ensure_future(write_one_file(crowd, index, scratch_dir))
        tasks.append(task)
        if index % 2:
            killers.append(asyncio.ensure_future(killer(task, rng.randint(0, 40))))
    await asyncio.wait([*tasks, *killers])
    errors = [t.exception() for t in tasks if not t.cancelled() and t.exception()]
    assert errors == []
    crowd.cancelled = {index for index, t in enumerate(tasks) if t.cancelled()}
    assert len(crowd.cancelled - crowd.finished) > FILE_COUNT // 10
    assert crowd.finished | crowd.cancelled == set(range(FILE_COUNT))
    check_everything_given_back(crowd, scratch_dir, before)


async def test_thousand_files_with_failing_rollovers_give_everything_back(
    scratch_dir: Path, full_disk: Callable[[int], DiskFiller]
) -> None:
    filler = full_disk(3)
    before = open_descriptors()
    crowd = Crowd(atf.SpoolBudget(BUDGET))
    async with anyio.create_task_group() as tg:
        for index in range(FILE_COUNT):
            tg.start_soon(write_one_file, crowd, index, scratch_dir)
    assert filler.full > 0
    assert crowd.disk_full == filler.full  # each failure reached its writer
    assert crowd.finished == set(range(FILE_COUNT))
    check_everything_given_back(crowd, scratch_dir, before)
