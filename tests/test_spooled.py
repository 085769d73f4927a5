"""SpooledTemporaryFile as an explicit state machine: InMemory | RollingOver | OnDisk.

API.md, "Delete semantics" and "Cancellation and the event loop": in memory until
the data passes ``max_size`` (0: never by size) or ``fileno()`` / ``rollover()`` is
awaited, or ``truncate()`` grows it past ``max_size``; then an on-disk file with
the same bytes and position.  In memory no operation hops to a thread; a write
that would cross ``max_size`` rolls over first and the copy runs in a worker,
never on the loop.  ``rolled`` turns true only once the rollover succeeded; a
cancelled (or failed) rollover leaves the data intact, wholly in memory or
wholly on disk, position unchanged, nothing leaked.

The faults and the spying on threads come from ``fault_support``: ``open_file``
in ``anyio_tempfile._spooled`` (what the rollover's copy opens) and
``anyio.to_thread.run_sync`` are replaced for the test's duration.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import io
import os
import statistics
import tempfile
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AnyStr, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest
from fault_support import OpenFileSpy, ThreadRefused, ThreadSpy, real_open_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import Spooled313
from test_differential import (
    Op,
    Outcome,
    run_our_step,
    run_stdlib_step,
    stdlib_rolled,
)

import anyio_tempfile as atf
from anyio_tempfile._file import AsyncSpooledTemporaryFile

pytestmark = pytest.mark.anyio

BinaryFile = AsyncSpooledTemporaryFile[bytes]
TextFile = AsyncSpooledTemporaryFile[str]
Backend = tuple[str, dict[str, Any]]

MAX_SIZE = 16
DATA = b"0123456789"  # in memory, below MAX_SIZE
POSITION = 4  # where the tests leave the position before a rollover
CROSSING = b"x" * 20  # written at POSITION it takes the position to 24
LINES = b"one\ntwo\nthree\n"
TEXT_LINES = "one\ntwo\nthree\n"
CANCELLED = anyio.get_cancelled_exc_class


def backend_name(anyio_backend: Backend) -> str:
    return anyio_backend[0]


async def snapshot(file: AsyncSpooledTemporaryFile[AnyStr]) -> tuple[AnyStr, int]:
    """``(all the data, the position)``, the position left where it was."""
    position = await file.tell()
    await file.seek(0)
    data = await file.read()
    await file.seek(position)
    return data, position


async def spooled_with_data(directory: Path, **options: Any) -> BinaryFile:
    """A binary spooled file (max_size MAX_SIZE) holding DATA, at POSITION."""
    file: BinaryFile = await atf.SpooledTemporaryFile(
        options.pop("max_size", MAX_SIZE), dir=directory, **options
    )
    await file.write(DATA)
    await file.seek(POSITION)
    return file


def raw_bytes(file: AsyncSpooledTemporaryFile[Any]) -> bytes:
    """What a rolled-over file's descriptor holds, read with pread."""
    descriptor: int = file.wrapped.fileno()
    return os.pread(descriptor, 1 << 20, 0)


def stdlib_spooled(
    max_size: int, directory: Path, **options: Any
) -> tempfile.SpooledTemporaryFile[Any]:
    """The standard library's spooled file, to compare with."""
    # 3.13's spooled file on every version (3.10's truncate returns None).
    spooled: Any = Spooled313
    file: tempfile.SpooledTemporaryFile[Any] = spooled(
        max_size, dir=str(directory), **options
    )
    return file


def stdlib_raw_bytes(file: tempfile.SpooledTemporaryFile[Any]) -> bytes:
    file.flush()
    return os.pread(file.fileno(), 1 << 20, 0)


# -- in memory: no worker thread; a checkpoint one call in 64 ----------------------


async def read_into(file: BinaryFile) -> tuple[int, bytes]:
    buffer = bytearray(5)
    count = await file.readinto(buffer)
    return count, bytes(buffer)


async def read_into1(file: BinaryFile) -> tuple[int, bytes]:
    buffer = bytearray(5)
    count = await file.readinto1(buffer)
    return count, bytes(buffer)


async def iterate(file: AsyncSpooledTemporaryFile[AnyStr]) -> list[AnyStr]:
    return [line async for line in file]


async def exit_block(file: AsyncSpooledTemporaryFile[Any]) -> bool:
    async with file:
        pass
    return file.closed


async def close(file: AsyncSpooledTemporaryFile[Any]) -> bool:
    await file.aclose()
    return file.closed


BinaryOp = Callable[[BinaryFile], Coroutine[Any, Any, object]]
TextOp = Callable[[TextFile], Coroutine[Any, Any, object]]

# Each runs on a file holding LINES (TEXT_LINES) at position 0, max_size 64:
# (operation, what it returns).
IN_MEMORY_BINARY_OPS: dict[str, tuple[BinaryOp, object]] = {
    "read": (lambda f: f.read(), LINES),
    "read-sized": (lambda f: f.read(5), b"one\nt"),
    "read1": (lambda f: f.read1(3), b"one"),
    "readinto": (read_into, (5, b"one\nt")),
    "readinto1": (read_into1, (5, b"one\nt")),
    "readline": (lambda f: f.readline(), b"one\n"),
    "readline-sized": (lambda f: f.readline(2), b"on"),
    "readlines": (lambda f: f.readlines(), [b"one\n", b"two\n", b"three\n"]),
    "write": (lambda f: f.write(b"ab"), 2),
    "write-to-max-size": (lambda f: f.write(b"m" * 64), 64),
    "writelines": (lambda f: f.writelines([b"a", b"b" * 63]), None),
    "seek": (lambda f: f.seek(3), 3),
    "seek-end": (lambda f: f.seek(-2, os.SEEK_END), len(LINES) - 2),
    "tell": (lambda f: f.tell(), 0),
    "truncate": (lambda f: f.truncate(4), 4),
    "truncate-to-max-size": (lambda f: f.truncate(64), 64),
    "truncate-bare": (lambda f: f.truncate(), 0),
    "flush": (lambda f: f.flush(), None),
    "iterate": (iterate, [b"one\n", b"two\n", b"three\n"]),
    "aclose": (close, True),
    "async-with-exit": (exit_block, True),
}

IN_MEMORY_TEXT_OPS: dict[str, tuple[TextOp, object]] = {
    "read": (lambda f: f.read(), TEXT_LINES),
    "read-sized": (lambda f: f.read(5), "one\nt"),
    "readline": (lambda f: f.readline(), "one\n"),
    "readline-sized": (lambda f: f.readline(2), "on"),
    "readlines": (lambda f: f.readlines(), ["one\n", "two\n", "three\n"]),
    "write": (lambda f: f.write("ab€"), 3),
    "write-to-max-size": (lambda f: f.write("é" * 32), 32),
    "writelines": (lambda f: f.writelines(["a", "b" * 63]), None),
    "seek": (lambda f: f.seek(3), 3),
    "seek-end": (lambda f: f.seek(0, os.SEEK_END), len(TEXT_LINES)),
    "tell": (lambda f: f.tell(), 0),
    "truncate": (lambda f: f.truncate(4), 4),
    "truncate-to-max-size": (lambda f: f.truncate(64), 64),
    "flush": (lambda f: f.flush(), None),
    "iterate": (iterate, ["one\n", "two\n", "three\n"]),
    "aclose": (close, True),
    "async-with-exit": (exit_block, True),
}

# Operations that leave the file open, for the cancellation-point tests.
OPEN_BINARY_OPS = {
    name: op
    for name, (op, _) in IN_MEMORY_BINARY_OPS.items()
    if name not in ("aclose", "async-with-exit")
}
OPEN_TEXT_OPS = {
    name: op
    for name, (op, _) in IN_MEMORY_TEXT_OPS.items()
    if name not in ("aclose", "async-with-exit")
}


@pytest.mark.parametrize("name", list(IN_MEMORY_BINARY_OPS))
async def test_in_memory_binary_operation_uses_no_worker_thread(
    name: str, scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    op, expected = IN_MEMORY_BINARY_OPS[name]
    file: BinaryFile = await atf.SpooledTemporaryFile(64, dir=scratch_dir)
    await file.write(LINES)
    await file.seek(0)
    spy = ThreadSpy(forbid=True).install(monkeypatch)
    assert await op(file) == expected
    spy.assert_no_thread_used()
    assert not file.rolled
    await file.aclose()


@pytest.mark.parametrize("name", list(IN_MEMORY_TEXT_OPS))
async def test_in_memory_text_operation_uses_no_worker_thread(
    name: str, scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    op, expected = IN_MEMORY_TEXT_OPS[name]
    file: TextFile = await atf.SpooledTemporaryFile(
        64, "w+", encoding="utf-8", dir=scratch_dir
    )
    await file.write(TEXT_LINES)
    await file.seek(0)
    spy = ThreadSpy(forbid=True).install(monkeypatch)
    assert await op(file) == expected
    spy.assert_no_thread_used()
    assert not file.rolled
    await file.aclose()


async def test_thread_spy_sees_the_rollover_worker(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spy of the tests above can fail: a rollover's hop is refused.
    file = await spooled_with_data(scratch_dir)
    spy = ThreadSpy(forbid=True).install(monkeypatch)
    with pytest.raises(ThreadRefused):
        await file.rollover()
    assert spy.hops != []
    assert not file.rolled
    assert await snapshot(file) == (DATA, POSITION)
    await file.aclose()


def memory_state(file: AsyncSpooledTemporaryFile[Any]) -> tuple[bytes, int]:
    """The in-memory buffer's bytes and position, read without an await."""
    wrapped: Any = file.wrapped
    position: int = wrapped.tell()  # flushes a TextIOWrapper's pending text
    memory: io.BytesIO = getattr(wrapped, "buffer", wrapped)
    return memory.getvalue(), position


async def first_cancelled_call(
    file: AsyncSpooledTemporaryFile[Any],
    op: Callable[[Any], Awaitable[object]],
) -> tuple[int, bool]:
    """Call ``op`` under a cancelled scope until the cancellation arrives.

    Returns how many calls that took, and whether the call that raised it
    left the buffer and position exactly as they were before it.
    """
    calls, unchanged = 0, False
    with anyio.CancelScope() as scope:
        scope.cancel()
        while calls <= CHECKPOINT_EVERY:
            calls += 1
            before = memory_state(file)
            try:
                await op(file)
            except CANCELLED():
                unchanged = memory_state(file) == before
                raise
    assert scope.cancelled_caught, f"{calls} calls and no cancellation"
    return calls, unchanged


# In memory, most operations return without yielding (like StreamReader.read with
# buffered data); one in CHECKPOINT_EVERY is a full checkpoint (_file.py).
CHECKPOINT_EVERY = 64
LONG_LINES = LINES * 64
LONG_TEXT_LINES = TEXT_LINES * 64
CANCELLABLE_BINARY_OPS: dict[str, BinaryOp] = {
    **{
        name: op
        for name, (op, _) in IN_MEMORY_BINARY_OPS.items()
        if name not in ("iterate", "aclose", "async-with-exit")
    },
    "anext": lambda f: f.__anext__(),
}
CANCELLABLE_TEXT_OPS: dict[str, TextOp] = {
    **{
        name: op
        for name, (op, _) in IN_MEMORY_TEXT_OPS.items()
        if name not in ("iterate", "aclose", "async-with-exit")
    },
    "anext": lambda f: f.__anext__(),
}


@pytest.mark.parametrize("name", list(CANCELLABLE_BINARY_OPS))
async def test_cancelled_in_memory_binary_operation_is_delivered_and_does_nothing(
    name: str, scratch_dir: Path
) -> None:
    file: BinaryFile = await atf.SpooledTemporaryFile(1 << 20, dir=scratch_dir)
    await file.write(LONG_LINES)
    await file.seek(1)
    calls, unchanged = await first_cancelled_call(file, CANCELLABLE_BINARY_OPS[name])
    assert calls <= CHECKPOINT_EVERY
    assert unchanged
    assert not file.rolled
    await file.aclose()


@pytest.mark.parametrize("name", list(CANCELLABLE_TEXT_OPS))
async def test_cancelled_in_memory_text_operation_is_delivered_and_does_nothing(
    name: str, scratch_dir: Path
) -> None:
    file: TextFile = await atf.SpooledTemporaryFile(
        1 << 20, "w+", encoding="utf-8", dir=scratch_dir
    )
    await file.write(LONG_TEXT_LINES)
    await file.seek(1)
    calls, unchanged = await first_cancelled_call(file, CANCELLABLE_TEXT_OPS[name])
    assert calls <= CHECKPOINT_EVERY
    assert unchanged
    assert not file.rolled
    await file.aclose()


async def test_in_memory_operations_let_other_tasks_run(scratch_dir: Path) -> None:
    # No blocked loop: a task busy with in-memory calls yields now and then.
    rounds = 8
    other_ran_at: list[int] = []
    written = 0

    async def other_task() -> None:
        while True:
            other_ran_at.append(written)
            await anyio.lowlevel.checkpoint()

    async with atf.SpooledTemporaryFile(1 << 20, dir=scratch_dir) as file:
        async with anyio.create_task_group() as group:
            group.start_soon(other_task)
            await anyio.lowlevel.checkpoint()
            other_ran_at.clear()
            for _ in range(rounds * CHECKPOINT_EVERY):
                await file.write(b"w")
                written += 1
            group.cancel_scope.cancel()
        assert not file.rolled
    # Trio may run the other task twice between two of our checkpoints (its
    # batches are in random order): count its runs, not distinct positions.
    assert len(other_ran_at) >= rounds - 1, other_ran_at


# -- when it rolls over: the stdlib's rule, exactly ---------------------------------


@pytest.mark.parametrize(
    ("size", "rolled"),
    [(MAX_SIZE - 1, False), (MAX_SIZE, False), (MAX_SIZE + 1, True)],
)
async def test_write_rolls_over_only_when_the_position_passes_max_size(
    size: int, rolled: bool, scratch_dir: Path
) -> None:
    data = bytes(range(size))
    async with atf.SpooledTemporaryFile(MAX_SIZE, dir=scratch_dir) as file:
        assert await file.write(data) == size
        assert file.rolled is rolled
        assert await snapshot(file) == (data, size)


async def test_rolled_follows_the_position_after_the_write_not_the_size(
    scratch_dir: Path,
) -> None:
    steps: list[tuple[str, Any]] = [
        ("write", b"a" * MAX_SIZE),  # 16: stays
        ("seek", 4),
        ("write", b"b" * 12),  # back at 16: stays
        ("seek", MAX_SIZE - 1),
        ("write", b"cc"),  # 17: rolls
    ]
    rolled_after: list[bool] = []
    with stdlib_spooled(MAX_SIZE, scratch_dir) as expected:
        async with atf.SpooledTemporaryFile(MAX_SIZE, dir=scratch_dir) as file:
            for method, argument in steps:
                getattr(expected, method)(argument)
                await getattr(file, method)(argument)
                assert file.rolled == stdlib_rolled(expected)
                rolled_after.append(file.rolled)
            assert await snapshot(file) == (b"aaaa" + b"b" * 11 + b"cc", 17)
    assert rolled_after == [False, False, False, False, True]


async def test_write_after_seeking_past_max_size_rolls_over_and_zero_fills(
    scratch_dir: Path,
) -> None:
    async with atf.SpooledTemporaryFile(MAX_SIZE, dir=scratch_dir) as file:
        await file.write(b"abc")
        assert await file.seek(100) == 100
        assert not file.rolled  # seeking alone never rolls over
        await file.write(b"z")
        assert file.rolled
        assert await snapshot(file) == (b"abc" + bytes(97) + b"z", 101)


async def test_empty_write_past_max_size_rolls_over_as_the_stdlib(
    scratch_dir: Path,
) -> None:
    with stdlib_spooled(MAX_SIZE, scratch_dir) as expected:
        expected.seek(MAX_SIZE + 1)
        expected.write(b"")
        async with atf.SpooledTemporaryFile(MAX_SIZE, dir=scratch_dir) as file:
            await file.seek(MAX_SIZE + 1)
            assert await file.write(b"") == 0
            assert file.rolled is stdlib_rolled(expected) is True
            assert await snapshot(file) == (b"", MAX_SIZE + 1)


async def test_crossing_write_rolls_over_before_its_data_is_written(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file()).install(monkeypatch)
    async with await spooled_with_data(scratch_dir) as file:
        assert await file.write(CROSSING) == len(CROSSING)
        await file.flush()
        # The copy holds only what was there before; the new data follows, on disk.
        assert [(write.layer, write.data) for write in spy.writes] == [
            ("file", DATA),
            ("file", CROSSING),
        ]
        assert file.rolled
        assert await snapshot(file) == (DATA[:POSITION] + CROSSING, 24)


async def test_crossing_text_write_rolls_over_before_its_text_is_written(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file()).install(monkeypatch)
    async with atf.SpooledTemporaryFile(
        MAX_SIZE, "w+", encoding="utf-8", dir=scratch_dir
    ) as file:
        await file.write("héllo")  # 6 bytes
        await file.write("wörld!!!!!!")  # 12 more: 18 > 16
        await file.flush()
        assert [(write.layer, write.data) for write in spy.writes] == [
            ("buffer", "héllo".encode()),
            ("file", "wörld!!!!!!"),
        ]
        assert file.rolled
        assert await snapshot(file) == ("héllowörld!!!!!!", 18)


@pytest.mark.parametrize("many", [False, True], ids=["write", "writelines"])
async def test_crossing_write_and_its_rollover_share_one_worker_call(
    many: bool, scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await spooled_with_data(scratch_dir) as file:
        spy = ThreadSpy(forbid=False).install(monkeypatch)
        if many:
            await file.writelines([CROSSING[:10], CROSSING[10:]])
        else:
            assert await file.write(CROSSING) == len(CROSSING)
        assert file.rolled
        assert len(spy.hops) == 1, spy.hops
        assert await snapshot(file) == (DATA[:POSITION] + CROSSING, 24)


async def test_rollover_opens_copies_and_writes_in_worker_threads(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    spy = OpenFileSpy(real_open_file()).install(monkeypatch)
    async with await spooled_with_data(scratch_dir) as file:
        await file.write(CROSSING)
        await file.flush()
        assert len(spy.open_threads) == 1
        assert len(spy.writes) == 2
        used = {*spy.open_threads, *(write.thread for write in spy.writes)}
        assert loop_thread not in used


@pytest.mark.parametrize(
    ("encoding", "newline", "pieces", "rolled"),
    [
        # utf-8: "é" is two bytes; 16 bytes stay, 17 roll.
        ("utf-8", None, ["é" * 8], [False]),
        ("utf-8", None, ["é" * 8, "a"], [False, True]),
        ("utf-8", None, ["abc", "€" * 4, "d"], [False, False, False]),
        ("utf-8", None, ["abc", "€" * 4, "de"], [False, False, True]),
        # newline="\r\n": each "\n" is written as two bytes.
        ("utf-8", "\r\n", ["ab\n" * 4], [False]),
        ("utf-8", "\r\n", ["ab\n" * 4, "x"], [False, True]),
        ("utf-8", "\r\n", ["abcdefghijklmno", "\n"], [False, True]),
        # utf-16: the BOM counts; 2 + 7 * 2 = 16.
        ("utf-16", None, ["abcdefg"], [False]),
        ("utf-16", None, ["abc", "defg", "h"], [False, False, True]),
        ("utf-16", "\r\n", ["abcde\n"], [False]),
        ("utf-16", "\r\n", ["abcdef\n"], [True]),
        # latin-1: one byte a character.
        ("latin-1", None, ["é" * 16], [False]),
        ("latin-1", None, ["é" * 16, "é"], [False, True]),
    ],
)
async def test_text_write_rolls_over_when_the_encoded_position_passes_max_size(
    encoding: str,
    newline: str | None,
    pieces: list[str],
    rolled: list[bool],
    scratch_dir: Path,
) -> None:
    options: dict[str, Any] = {"mode": "w+", "encoding": encoding, "newline": newline}
    with stdlib_spooled(MAX_SIZE, scratch_dir, **options) as expected:
        async with atf.SpooledTemporaryFile(
            MAX_SIZE, dir=scratch_dir, **options
        ) as file:
            rolled_after: list[bool] = []
            for piece in pieces:
                assert await file.write(piece) == expected.write(piece)
                assert file.rolled == stdlib_rolled(expected)
                rolled_after.append(file.rolled)
            assert rolled_after == rolled
            assert await file.tell() == expected.tell()


@pytest.mark.parametrize(("size", "rolled"), [(MAX_SIZE, False), (MAX_SIZE + 1, True)])
async def test_truncate_rolls_over_only_past_max_size(
    size: int, rolled: bool, scratch_dir: Path
) -> None:
    async with await spooled_with_data(scratch_dir) as file:
        assert await file.truncate(size) == size
        assert file.rolled is rolled
        # On disk a truncate grows the file; a BytesIO does not (as the stdlib).
        assert await snapshot(file) == (DATA + bytes(size - 10) if rolled else DATA, 4)


async def test_rolled_file_stays_on_disk_when_truncated_below_max_size(
    scratch_dir: Path,
) -> None:
    async with await spooled_with_data(scratch_dir) as file:
        await file.rollover()
        assert await file.truncate(2) == 2
        assert file.rolled
        assert await snapshot(file) == (DATA[:2], POSITION)


async def test_forced_rollover_keeps_the_bytes_and_the_position(
    scratch_dir: Path,
) -> None:
    async with await spooled_with_data(scratch_dir) as file:
        await file.rollover()
        assert file.rolled
        assert await file.tell() == POSITION
        assert await file.read() == DATA[POSITION:]
        assert raw_bytes(file) == DATA


async def test_second_rollover_opens_nothing(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file()).install(monkeypatch)
    async with await spooled_with_data(scratch_dir) as file:
        await file.rollover()
        wrapped = file.wrapped
        await file.rollover()
        assert len(spy.opened) == 1
        assert file.wrapped is wrapped
        assert await snapshot(file) == (DATA, POSITION)


async def test_fileno_rolls_over_to_a_descriptor_with_the_bytes_and_position(
    scratch_dir: Path,
) -> None:
    async with await spooled_with_data(scratch_dir) as file:
        descriptor = await file.fileno()
        assert file.rolled
        assert os.pread(descriptor, 100, 0) == DATA
        assert os.lseek(descriptor, 0, os.SEEK_CUR) == POSITION
        assert await file.fileno() == descriptor


async def test_seek_back_below_max_size_after_rollover_reads_the_copied_bytes(
    scratch_dir: Path,
) -> None:
    async with await spooled_with_data(scratch_dir) as file:
        await file.write(CROSSING)
        assert await file.seek(2) == 2
        assert await file.read(4) == b"23xx"
        assert file.rolled


async def test_writelines_crossing_max_size_rolls_over_before_writing(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file()).install(monkeypatch)
    async with await spooled_with_data(scratch_dir) as file:
        await file.writelines([b"a" * 6, b"b" * 6, b"c"])  # 4 + 13 = 17
        await file.flush()
        assert file.rolled
        assert spy.writes[0].data == DATA
        assert b"".join(cast(bytes, write.data) for write in spy.writes[1:]) == (
            b"a" * 6 + b"b" * 6 + b"c"
        )
        assert await snapshot(file) == (b"0123" + b"a" * 6 + b"b" * 6 + b"c", 17)


async def test_writelines_ending_at_max_size_stays_in_memory(
    scratch_dir: Path,
) -> None:
    async with await spooled_with_data(scratch_dir) as file:
        await file.writelines(iter([b"a" * 6, b"b" * 6]))  # 4 + 12 = 16
        assert not file.rolled
        assert await snapshot(file) == (b"0123" + b"a" * 6 + b"b" * 6, 16)


async def test_max_size_zero_never_rolls_over_by_writing(scratch_dir: Path) -> None:
    chunk = b"q" * 65536
    async with atf.SpooledTemporaryFile(dir=scratch_dir) as file:
        for _ in range(16):
            await file.write(chunk)
        await file.writelines([chunk, chunk])
        await file.seek(10 << 20)
        await file.write(b"!")
        assert file.max_size == 0
        assert not file.rolled
        assert await file.tell() == (10 << 20) + 1


@pytest.mark.parametrize(
    ("trigger", "data"),
    [("fileno", b"abc"), ("rollover", b"abc"), ("truncate-1", b"a")],
)
async def test_max_size_zero_rolls_over_on_request_as_the_stdlib(
    trigger: str, data: bytes, scratch_dir: Path
) -> None:
    with stdlib_spooled(0, scratch_dir) as expected:
        expected.write(b"abc")
        async with atf.SpooledTemporaryFile(dir=scratch_dir) as file:
            await file.write(b"abc")
            if trigger == "fileno":
                expected.fileno()
                await file.fileno()
            elif trigger == "rollover":
                expected.rollover()
                await file.rollover()
            else:
                expected.truncate(1)
                await file.truncate(1)
            assert file.rolled is stdlib_rolled(expected) is True
            assert await snapshot(file) == (data, 3)


async def test_max_size_zero_truncate_to_zero_stays_in_memory(
    scratch_dir: Path,
) -> None:
    async with atf.SpooledTemporaryFile(dir=scratch_dir) as file:
        await file.write(b"abc")
        assert await file.truncate(0) == 0
        assert not file.rolled


# -- text: the encoded bytes survive exactly ----------------------------------------

TEXT = "naïve\r\ncafé\nünïcödé\r€𝄞\n"


@pytest.mark.parametrize(
    ("encoding", "newline"),
    [
        ("utf-8", None),
        ("utf-8", ""),
        ("utf-8", "\r\n"),
        ("utf-16", None),
        ("utf-16", "\r\n"),
        ("latin-1", "\r\n"),
    ],
)
async def test_text_rollover_copies_the_encoded_bytes_exactly(
    encoding: str, newline: str | None, scratch_dir: Path
) -> None:
    text = TEXT if encoding != "latin-1" else TEXT.replace("€𝄞", "¤")
    options: dict[str, Any] = {"mode": "w+", "encoding": encoding, "newline": newline}
    with stdlib_spooled(0, scratch_dir, **options) as expected:
        expected.write(text)
        expected.rollover()
        async with atf.SpooledTemporaryFile(dir=scratch_dir, **options) as file:
            await file.write(text)
            position = await file.tell()
            await file.rollover()
            assert await file.tell() == position == expected.tell()
            await file.flush()
            assert raw_bytes(file) == stdlib_raw_bytes(expected)
            await file.seek(0)
            expected.seek(0)
            assert await file.read() == expected.read()


async def test_text_rollover_writes_crlf_as_given_by_newline(
    scratch_dir: Path,
) -> None:
    async with atf.SpooledTemporaryFile(
        0, "w+", encoding="utf-8", newline="\r\n", dir=scratch_dir
    ) as file:
        await file.write("é\nb\r\n")
        await file.rollover()
        await file.flush()
        assert raw_bytes(file) == b"\xc3\xa9\r\nb\r\r\n"


async def test_text_rollover_keeps_a_position_inside_the_text(
    scratch_dir: Path,
) -> None:
    async with atf.SpooledTemporaryFile(
        0, "w+", encoding="utf-8", newline="", dir=scratch_dir
    ) as file:
        await file.write("für\r\n")
        middle = await file.tell()
        await file.write("€ and 𝄞\r\n")
        await file.seek(middle)
        await file.rollover()
        assert await file.tell() == middle == 6
        assert await file.read() == "€ and 𝄞\r\n"


async def test_utf16_write_after_rollover_adds_no_second_bom(
    scratch_dir: Path,
) -> None:
    options: dict[str, Any] = {"mode": "w+", "encoding": "utf-16"}
    with stdlib_spooled(0, scratch_dir, **options) as expected:
        expected.write("ab")
        expected.rollover()
        expected.write("cd")
        async with atf.SpooledTemporaryFile(dir=scratch_dir, **options) as file:
            await file.write("ab")
            await file.rollover()
            await file.write("cd")
            await file.flush()
            assert raw_bytes(file) == stdlib_raw_bytes(expected)
            assert raw_bytes(file) == "abcd".encode("utf-16")


async def test_utf16_write_after_reading_at_the_start_stays_in_memory_as_the_stdlib(
    scratch_dir: Path,
) -> None:
    # After read() at the start, tell() is a cookie (4 << 64: "endianness not
    # yet known"), not a byte position: the write needs 4 bytes, BOM included.
    options: dict[str, Any] = {"mode": "w+", "encoding": "utf-16"}
    with stdlib_spooled(4, scratch_dir, **options) as expected:
        expected.read(1)
        expected.write("a")
        assert not stdlib_rolled(expected)
        async with atf.SpooledTemporaryFile(4, dir=scratch_dir, **options) as file:
            assert await file.read(1) == ""
            assert await file.write("a") == 1
            assert file.rolled is stdlib_rolled(expected) is False
            await file.seek(0)
            assert await file.read() == "a"


async def test_crossing_text_write_after_a_read_goes_where_the_stdlib_writes_it(
    scratch_dir: Path,
) -> None:
    # CPython's TextIOWrapper writes after a read at the end of its read-ahead,
    # not at tell() (bpo-12215); the stdlib's spooled file writes in memory,
    # then rolls over, so that is where the data goes there.
    options: dict[str, Any] = {"mode": "w+", "encoding": "utf-8"}
    with stdlib_spooled(5, scratch_dir, **options) as expected:
        expected.write("abcde")
        expected.seek(0)
        expected.read(4)
        expected.write("XY")
        expected.seek(0)
        async with atf.SpooledTemporaryFile(5, dir=scratch_dir, **options) as file:
            await file.write("abcde")
            await file.seek(0)
            assert await file.read(4) == "abcd"
            assert await file.write("XY") == 2
            assert file.rolled is stdlib_rolled(expected) is True
            await file.seek(0)
            assert await file.read() == expected.read() == "abcdeXY"


async def test_utf16_crossing_write_after_seek_and_read_matches_the_stdlib(
    scratch_dir: Path,
) -> None:
    # After seek(0) the encoder is reset: the stdlib's in-memory file writes a
    # second BOM even once a read has moved the position on.
    options: dict[str, Any] = {"mode": "w+", "encoding": "utf-16"}
    with stdlib_spooled(4, scratch_dir, **options) as expected:
        async with atf.SpooledTemporaryFile(4, dir=scratch_dir, **options) as file:
            for step in [("write", ("a",)), ("seek", (0,)), ("read", (1,))]:
                run_stdlib_step(expected, step, options)
                await run_our_step(file, step, options)
            expected.write("b")
            assert await file.write("b") == 1
            assert file.rolled is stdlib_rolled(expected) is True
            await file.flush()
            assert raw_bytes(file) == stdlib_raw_bytes(expected)


# -- a failed rollover: still wholly in memory --------------------------------------


async def cross_by_writing(file: BinaryFile) -> object:
    return await file.write(CROSSING)


async def cross_by_writelines(file: BinaryFile) -> object:
    await file.writelines([b"a" * 10, b"b" * 10])
    return None


async def roll_by_truncating(file: BinaryFile) -> object:
    return await file.truncate(MAX_SIZE + 1)


ROLLING_OPS: dict[str, BinaryOp] = {
    "rollover": lambda f: f.rollover(),
    "crossing-write": cross_by_writing,
    "crossing-writelines": cross_by_writelines,
    "fileno": lambda f: f.fileno(),
    "truncate": roll_by_truncating,
}


async def assert_wholly_in_memory(file: BinaryFile, wrapped: Any) -> None:
    assert not file.rolled
    assert file.wrapped is wrapped
    assert not wrapped.closed
    assert await snapshot(file) == (DATA, POSITION)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("name", list(ROLLING_OPS))
async def test_failed_copy_leaves_the_data_in_memory(
    name: str, code: int, no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file(), copy_error=code, copied_before_error=3).install(
        monkeypatch
    )
    async with await spooled_with_data(no_leaks) as file:
        wrapped = file.wrapped
        with pytest.raises(OSError, match=os.strerror(code)) as caught:
            await ROLLING_OPS[name](file)
        assert caught.value.errno == code
        assert len(spy.opened) == 1
        assert spy.all_closed
        assert os.listdir(no_leaks) == []
        await assert_wholly_in_memory(file, wrapped)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
async def test_failed_text_copy_leaves_the_text_in_memory(
    code: int, no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file(), copy_error=code).install(monkeypatch)
    async with atf.SpooledTemporaryFile(
        MAX_SIZE, "w+", encoding="utf-8", newline="\r\n", dir=no_leaks
    ) as file:
        await file.write("né\n")  # 5 bytes
        wrapped = file.wrapped
        with pytest.raises(OSError, match=os.strerror(code)) as caught:
            await file.write("€" * 4)  # 12 more: 17
        assert caught.value.errno == code
        assert [write.layer for write in spy.writes] == ["buffer"]
        assert spy.all_closed
        assert not file.rolled
        assert file.wrapped is wrapped
        assert await snapshot(file) == ("né\r\n", 5)
        assert memory_state(file) == (b"n\xc3\xa9\r\n", 5)


@pytest.mark.parametrize("name", list(ROLLING_OPS))
async def test_refused_open_leaves_the_data_in_memory(
    name: str, no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file(), open_error=errno.EMFILE).install(monkeypatch)
    async with await spooled_with_data(no_leaks) as file:
        wrapped = file.wrapped
        with pytest.raises(OSError, match=os.strerror(errno.EMFILE)) as caught:
            await ROLLING_OPS[name](file)
        assert caught.value.errno == errno.EMFILE
        assert spy.opened == []
        await assert_wholly_in_memory(file, wrapped)


async def test_rollover_succeeds_after_a_failed_one(
    no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file(), copy_error=errno.ENOSPC).install(monkeypatch)
    async with await spooled_with_data(no_leaks) as file:
        with pytest.raises(OSError, match=os.strerror(errno.ENOSPC)):
            await file.write(CROSSING)
        spy.copy_error = None
        spy.writes.clear()
        assert await file.write(CROSSING) == len(CROSSING)
        assert file.rolled
        assert await snapshot(file) == (DATA[:POSITION] + CROSSING, 24)
        assert len(spy.opened) == 2


# -- a cancelled rollover: data intact, nothing leaked ------------------------------


async def run_cancelled_from_worker(
    backend: str,
    operation: Callable[[], Coroutine[Any, Any, object]],
    spy: OpenFileSpy,
    *,
    native: bool,
    at: str,
) -> bool:
    """Run ``operation``, cancelled from inside the rollover's worker thread.

    ``at``: ``"open"`` (before the new file is opened) or ``"copy"`` (once the
    data is copied).  ``native``: on asyncio ``Task.cancel()``, on trio a trio
    cancel scope; otherwise an AnyIO cancel scope.  Returns whether the
    cancellation reached the caller.
    """
    cancel: list[Callable[[], object]] = []

    def hook() -> None:
        anyio.from_thread.run_sync(cancel[0])
        time.sleep(0.005)  # still running when the task sees the cancellation

    if at == "open":
        spy.before_open = hook
    else:
        spy.after_copy = hook
    if native and backend == "asyncio":
        task = asyncio.ensure_future(operation())
        cancel.append(task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False
    if native:
        import trio

        with trio.CancelScope() as trio_scope:
            cancel.append(trio_scope.cancel)
            await operation()
        return trio_scope.cancelled_caught
    with anyio.CancelScope() as scope:
        cancel.append(scope.cancel)
        await operation()
    return scope.cancelled_caught


@pytest.mark.parametrize("at", ["open", "copy"])
@pytest.mark.parametrize("native", [False, True], ids=["anyio-scope", "native"])
@pytest.mark.parametrize("name", list(ROLLING_OPS))
async def test_rollover_cancelled_inside_its_worker_leaves_the_data_in_memory(
    name: str,
    native: bool,
    at: str,
    anyio_backend: Backend,
    no_leaks: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = OpenFileSpy(real_open_file()).install(monkeypatch)
    async with await spooled_with_data(no_leaks) as file:
        wrapped = file.wrapped
        op = ROLLING_OPS[name]
        cancelled = await run_cancelled_from_worker(
            backend_name(anyio_backend), lambda: op(file), spy, native=native, at=at
        )
        assert cancelled
        assert len(spy.opened) == 1
        assert spy.all_closed
        assert os.listdir(no_leaks) == []
        await assert_wholly_in_memory(file, wrapped)


@pytest.mark.parametrize("name", list(ROLLING_OPS))
async def test_rollover_cancelled_before_it_starts_opens_nothing(
    name: str, no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = OpenFileSpy(real_open_file()).install(monkeypatch)
    async with await spooled_with_data(no_leaks) as file:
        wrapped = file.wrapped
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ROLLING_OPS[name](file)
        assert scope.cancelled_caught
        assert spy.open_threads == []
        await assert_wholly_in_memory(file, wrapped)


@pytest.mark.parametrize("native", [False, True], ids=["anyio-scope", "native"])
async def test_rollover_cancelled_while_waiting_for_a_worker_leaves_data_in_memory(
    native: bool,
    anyio_backend: Backend,
    no_leaks: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = OpenFileSpy(real_open_file()).install(monkeypatch)
    limiter = anyio.CapacityLimiter(1)
    asyncio_native = native and backend_name(anyio_backend) == "asyncio"
    async with await spooled_with_data(no_leaks, limiter=limiter) as file:
        wrapped = file.wrapped
        outcome: list[str] = []
        scope = anyio.CancelScope()

        async def roll_over() -> None:
            try:
                with scope:
                    await file.write(CROSSING)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                if not asyncio_native:
                    raise
            else:
                outcome.append("cancelled" if scope.cancelled_caught else "returned")

        await limiter.acquire()  # the only worker token: the rollover must wait
        released = False
        try:
            async with anyio.create_task_group() as group:
                task: asyncio.Task[None] | None = None
                if asyncio_native:
                    task = asyncio.ensure_future(roll_over())
                else:
                    group.start_soon(roll_over)
                await anyio.wait_all_tasks_blocked()
                assert limiter.statistics().tasks_waiting == 1
                assert not file.rolled
                if task is not None:
                    task.cancel()
                else:
                    scope.cancel()
                limiter.release()
                released = True
                if task is not None:
                    await asyncio.wait([task])
        finally:
            if not released:
                limiter.release()
        assert outcome == ["cancelled"]
        assert spy.all_closed
        await assert_wholly_in_memory(file, wrapped)


# -- closing frees the memory; a closed file is closed ------------------------------


@pytest.mark.parametrize("mode", ["w+b", "w+"])
async def test_aclose_in_memory_frees_the_buffer_at_once(
    mode: str, scratch_dir: Path
) -> None:
    file: AsyncSpooledTemporaryFile[Any] = await atf.SpooledTemporaryFile(
        64, mode, dir=scratch_dir
    )
    await file.write(b"abc" if "b" in mode else "abc")
    wrapped: Any = file.wrapped
    memory: io.BytesIO = getattr(wrapped, "buffer", wrapped)
    await file.aclose()
    assert file.closed
    assert memory.closed
    with pytest.raises(ValueError, match="closed"):
        memory.getbuffer()


async def test_cancelled_aclose_in_memory_still_frees_the_buffer(
    scratch_dir: Path,
) -> None:
    file = await spooled_with_data(scratch_dir)
    memory: io.BytesIO = cast(io.BytesIO, file.wrapped)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await file.aclose()
    assert scope.cancelled_caught
    assert file.closed
    with pytest.raises(ValueError, match="closed"):
        memory.getbuffer()


@pytest.mark.parametrize("mode", ["w+b", "w+"])
async def test_rollover_frees_and_drops_the_in_memory_buffer(
    mode: str, scratch_dir: Path
) -> None:
    async with atf.SpooledTemporaryFile(64, mode, dir=scratch_dir) as file:
        await file.write(b"abc" if "b" in mode else "abc")
        wrapped: Any = file.wrapped
        memory: io.BytesIO = getattr(wrapped, "buffer", wrapped)
        buffer_ref = weakref.ref(memory)
        await file.rollover()
        with pytest.raises(ValueError, match="closed"):
            memory.getbuffer()
        del memory, wrapped
        gc.collect()
        assert buffer_ref() is None


def closed_ops(directory: Path) -> dict[str, BinaryOp]:
    return {
        "read": lambda f: f.read(),
        "read1": lambda f: f.read1(),
        "readinto": read_into,
        "readinto1": read_into1,
        "readline": lambda f: f.readline(),
        "readlines": lambda f: f.readlines(),
        "write": lambda f: f.write(b"a"),
        "crossing-write": lambda f: f.write(b"a" * 100),
        "writelines": lambda f: f.writelines([b"a"]),
        "seek": lambda f: f.seek(0),
        "tell": lambda f: f.tell(),
        "truncate": lambda f: f.truncate(0),
        "truncate-past-max-size": lambda f: f.truncate(100),
        "flush": lambda f: f.flush(),
        "fileno": lambda f: f.fileno(),
        "iterate": iterate,
        "persist": lambda f: f.persist(directory / "kept"),
        "async-with": exit_block,
    }


CLOSED_OP_NAMES = list(closed_ops(Path()))


@pytest.mark.parametrize("rolled", [False, True], ids=["in-memory", "rolled"])
@pytest.mark.parametrize("name", CLOSED_OP_NAMES)
async def test_closed_file_raises_value_error(
    name: str, rolled: bool, no_leaks: Path
) -> None:
    file = await spooled_with_data(no_leaks)
    if rolled:
        await file.rollover()
    await file.aclose()
    with pytest.raises(ValueError, match="closed"):
        await closed_ops(no_leaks)[name](file)
    assert file.closed
    assert file.rolled is rolled
    await file.aclose()  # closing again is no error, as for a file


async def test_closed_in_memory_file_refuses_to_roll_over(no_leaks: Path) -> None:
    file = await spooled_with_data(no_leaks)
    await file.aclose()
    with pytest.raises(ValueError, match="closed"):
        await file.rollover()
    assert not file.rolled


async def test_a_strided_write_past_max_size_stays_in_memory(no_leaks: Path) -> None:
    """Found by the stateful tests: refused as the stdlib's, without a rollover."""
    strided = memoryview(b"abcdefgh")[::2]
    with tempfile.SpooledTemporaryFile(2, dir=str(no_leaks)) as plain:
        with pytest.raises(BufferError) as theirs:
            plain.write(strided)
        assert not cast(Any, plain)._rolled
    async with atf.SpooledTemporaryFile(2, dir=no_leaks) as file:
        await file.write(b"x")
        with pytest.raises(BufferError) as ours:
            await file.write(strided)
        assert not file.rolled
        assert await file.tell() == 1
        await file.seek(0)
        assert await file.read() == b"x"
    assert str(ours.value) == str(theirs.value)


async def test_a_text_file_mid_iteration_truncates_as_the_stdlibs(
    no_leaks: Path,
) -> None:
    """Found by the differential tests: readlines(hint) leaves a TextIOWrapper
    mid-iteration, refusing tell() until it reads to the end.  truncate() needs
    no position (and its flush ends the iteration); a rollover needs one, and
    fails with the data kept in memory (the standard library's loses it: it
    swaps in the new file first)."""
    with tempfile.SpooledTemporaryFile(5, "w+", dir=str(no_leaks)) as plain:
        plain.write("bc")
        plain.seek(0)
        assert plain.readlines(1) == ["bc"]
        with pytest.raises(OSError, match="telling position disabled") as theirs:
            plain.tell()
        plain.truncate()  # 2 (None before 3.13)
        assert plain.tell() == 2
    async with atf.SpooledTemporaryFile(5, "w+", dir=no_leaks) as file:
        await file.write("bc")
        await file.seek(0)
        assert await file.readlines(1) == ["bc"]
        with pytest.raises(OSError, match="telling position disabled") as ours:
            await file.tell()
        assert str(ours.value) == str(theirs.value)
        with pytest.raises(OSError, match="telling position disabled"):
            await file.rollover()
        assert not file.rolled
        assert await file.truncate() == 2  # its flush ends the iteration
        assert await file.tell() == 2
        await file.seek(0)
        assert await file.read() == "bc"
        await file.rollover()
        assert file.rolled
        await file.seek(0)
        assert await file.read() == "bc"


# -- two tasks during a rollover ----------------------------------------------------


@dataclass
class HeldRollover:
    """Holds the rollover's worker until :meth:`release` (an ``OpenFileSpy`` hook)."""

    entered: anyio.Event = field(default_factory=anyio.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def hold(self) -> None:
        anyio.from_thread.run_sync(self.entered.set)
        assert self.released.wait(10), "the test never released the rollover"

    def release(self) -> None:
        self.released.set()


async def test_write_from_another_task_during_rollover_is_not_lost(
    no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldRollover()
    OpenFileSpy(real_open_file(), before_open=held.hold).install(monkeypatch)
    async with await spooled_with_data(no_leaks) as file:
        done: list[str] = []

        async def write(data: bytes, label: str) -> None:
            assert await file.write(data) == len(data)
            done.append(label)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(write, CROSSING, "crossing")
                await held.entered.wait()
                group.start_soon(write, b"YY", "small")
                await anyio.sleep(0.02)
                assert done == []  # the small write waits for the rollover
                assert not file.rolled
                held.release()
        finally:
            held.release()
        assert sorted(done) == ["crossing", "small"]
        assert file.rolled
        data, position = await snapshot(file)
        assert data in (b"0123" + CROSSING + b"YY", b"0123YY" + CROSSING)
        assert position == 26


async def test_tell_from_another_task_during_rollover_waits_for_it(
    no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldRollover()
    OpenFileSpy(real_open_file(), before_open=held.hold).install(monkeypatch)
    async with await spooled_with_data(no_leaks) as file:
        told: list[int] = []

        async def tell() -> None:
            told.append(await file.tell())

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(file.write, CROSSING)
                await held.entered.wait()
                group.start_soon(tell)
                await anyio.sleep(0.02)
                assert told == []
                held.release()
        finally:
            held.release()
        # Before or after the crossing write's data, never inside the rollover.
        assert told[0] in (POSITION, POSITION + len(CROSSING))
        assert await snapshot(file) == (b"0123" + CROSSING, 24)


async def test_failed_rollover_lets_the_waiting_write_go_on_in_memory(
    no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldRollover()
    OpenFileSpy(
        real_open_file(), before_open=held.hold, copy_error=errno.ENOSPC
    ).install(monkeypatch)
    async with await spooled_with_data(no_leaks) as file:
        errors: list[int | None] = []

        async def crossing_write() -> None:
            try:
                await file.write(CROSSING)
            except OSError as exc:
                errors.append(exc.errno)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(crossing_write)
                await held.entered.wait()
                group.start_soon(file.write, b"YY")
                await anyio.sleep(0.02)
                held.release()
        finally:
            held.release()
        assert errors == [errno.ENOSPC]
        assert not file.rolled
        assert await snapshot(file) == (b"0123YY6789", 6)


async def test_aclose_during_rollover_waits_for_it_and_leaks_nothing(
    no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldRollover()
    spy = OpenFileSpy(real_open_file(), before_open=held.hold).install(monkeypatch)
    file = await spooled_with_data(no_leaks)
    written: list[int] = []

    async def crossing_write() -> None:
        written.append(await file.write(CROSSING))

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(crossing_write)
            await held.entered.wait()
            group.start_soon(file.aclose)
            await anyio.sleep(0.02)
            assert not file.closed
            held.release()
    finally:
        held.release()
    assert written == [len(CROSSING)]
    assert file.closed
    assert file.rolled
    assert spy.all_closed


# -- differential: rollover-heavy sequences against the stdlib ----------------------

BOUNDARY_SETTINGS = settings(
    max_examples=int(os.environ.get("SPOOLED_EXAMPLES", "40")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Offsets from max_size: every step happens just below, at or just past it.
near = st.integers(min_value=-3, max_value=3)


def binary_steps() -> st.SearchStrategy[list[Op]]:
    steps: list[st.SearchStrategy[Op]] = [
        # ("write_to", (d,)): write until the position is max_size + d.
        st.tuples(st.just("write_to"), st.tuples(near)),
        st.tuples(st.just("write_to"), st.tuples(near)),
        st.tuples(st.just("write"), st.tuples(st.binary(max_size=6))),
        st.tuples(
            st.just("writelines"),
            st.tuples(st.lists(st.binary(max_size=9), max_size=3)),
        ),
        # ("seek_near", (d, whence)): max_size + d from the start, or d elsewhere.
        st.tuples(
            st.just("seek_near"),
            st.tuples(near, st.sampled_from([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END])),
        ),
        st.tuples(st.just("truncate_near"), st.tuples(near)),
        st.tuples(st.just("truncate"), st.tuples(st.integers(0, 4))),
        st.tuples(st.just("read"), st.tuples(st.integers(-1, 20))),
        st.tuples(st.just("tell"), st.just(())),
        st.tuples(st.just("rollover"), st.just(())),
        st.tuples(st.just("fileno"), st.just(())),
    ]
    return st.lists(st.one_of(steps), min_size=1, max_size=14)


TEXT_PIECES = ["a", "é", "€", "𝄞", "\n", "\r\n", "xyz"]


def text_steps() -> st.SearchStrategy[list[Op]]:
    pieces = st.lists(st.sampled_from(TEXT_PIECES), min_size=1, max_size=6).map("".join)
    steps: list[st.SearchStrategy[Op]] = [
        st.tuples(st.just("write"), st.tuples(pieces)),
        st.tuples(st.just("write"), st.tuples(pieces)),
        st.tuples(st.just("write"), st.tuples(pieces)),
        st.tuples(st.just("writelines"), st.tuples(st.lists(pieces, max_size=3))),
        st.tuples(st.just("seek_told"), st.tuples(st.integers(0, 10))),
        st.tuples(st.just("seek"), st.tuples(st.just(0), st.just(os.SEEK_END))),
        st.tuples(st.just("seek"), st.tuples(st.just(0))),
        st.tuples(st.just("truncate_near"), st.tuples(near)),
        st.tuples(st.just("read"), st.tuples(st.integers(-1, 8))),
        st.tuples(st.just("tell"), st.just(())),
        st.tuples(st.just("rollover"), st.just(())),
    ]
    return st.lists(st.one_of(steps), min_size=1, max_size=14)


def concrete(op: Op, expected: Any, max_size: int, told: list[int]) -> Op:
    """The step to run on both sides, its numbers taken from the stdlib's file."""
    name, args = op
    if name == "write_to":
        size = max(0, max_size + args[0] - expected.tell())
        return ("write", (bytes([65 + size % 26]) * size,))
    if name == "seek_near":
        offset, whence = args
        return (
            "seek",
            (max_size + offset if whence == os.SEEK_SET else offset, whence),
        )
    if name == "truncate_near":
        return ("truncate", (max(0, max_size + args[0]),))
    if name == "seek_told":
        return ("seek", (told[args[0] % len(told)] if told else 0,))
    return op


async def run_step(file: Any, expected: Any, op: Op) -> tuple[Outcome, Outcome]:
    if op[0] == "fileno":  # different descriptors: compare what happened only
        ours = await run_our_step(file, op, {})
        theirs = run_stdlib_step(expected, op, {})
        return (ours[0], None), (theirs[0], None)
    return await run_our_step(file, op, {}), run_stdlib_step(expected, op, {})


async def assert_same_rollovers(
    directory: Path, max_size: int, options: dict[str, Any], ops: list[Op]
) -> None:
    told: list[int] = []
    with stdlib_spooled(max_size, directory, **options) as expected:
        async with atf.SpooledTemporaryFile(max_size, dir=directory, **options) as file:
            for step, raw_op in enumerate(ops):
                op = concrete(raw_op, expected, max_size, told)
                actual, wanted = await run_step(file, expected, op)
                where = f"step {step}: {op!r} in {ops!r}"
                assert actual == wanted, where
                assert file.rolled == stdlib_rolled(expected), f"rolled after {where}"
                if op[0] in ("read", "readline") and wanted[0] == "ok":
                    # Told on both sides (a tell() flushes a pending text write,
                    # so it must never be asked of one side only).
                    op = ("tell", ())
                    actual, wanted = await run_step(file, expected, op)
                    assert actual == wanted, f"tell after {where}"
                if op[0] == "tell" and wanted[0] == "ok":
                    told.append(wanted[1])
            for op in [("seek", (0,)), ("read", ())]:
                actual, wanted = await run_step(file, expected, op)
                assert actual == wanted, f"final {op!r} after {ops!r}"
            await file.flush()
            await file.fileno()
            assert raw_bytes(file) == stdlib_raw_bytes(expected)
    assert os.listdir(directory) == []


@BOUNDARY_SETTINGS
@given(max_size=st.sampled_from([1, 7, 16]), ops=binary_steps())
async def test_binary_sequences_around_max_size_roll_over_as_the_stdlib(
    scratch_dir: Path, max_size: int, ops: list[Op]
) -> None:
    await assert_same_rollovers(scratch_dir, max_size, {"mode": "w+b"}, ops)


@BOUNDARY_SETTINGS
@given(
    max_size=st.sampled_from([4, 9, 16]),
    encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]),
    newline=st.sampled_from([None, "", "\r\n", "\r"]),
    ops=text_steps(),
)
async def test_text_sequences_around_max_size_roll_over_as_the_stdlib(
    scratch_dir: Path,
    max_size: int,
    encoding: str,
    newline: str | None,
    ops: list[Op],
) -> None:
    options = {"mode": "w+", "encoding": encoding, "newline": newline}
    await assert_same_rollovers(scratch_dir, max_size, options, ops)


# -- the loop keeps running while 32 MiB are copied ---------------------------------

MiB = 1 << 20
LAG_MAX_SIZE = 32 * MiB
TICK = 0.001
#: Noise only ever adds lateness: the figure asserted is the best of this many
#: runs (a loop really blocked by a copy is late in every one of them).
ATTEMPTS = 5
#: However slow the blocking copy, a loop this late is a blocked loop.
LATE = 0.025


@dataclass
class Ticker:
    """A task that sleeps TICK at a time and records when it was due and woke."""

    ticks: list[tuple[float, float]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            due = time.perf_counter() + TICK
            await anyio.sleep(TICK)
            self.ticks.append((due, time.perf_counter()))

    def worst(self, start: float, end: float) -> float:
        """The longest the loop kept a due tick waiting, within [start, end]."""
        return max(
            (
                min(woke, end) - max(due, start)
                for due, woke in self.ticks
                if woke > start and due < end
            ),
            default=0.0,
        )

    def count(self, start: float, end: float) -> int:
        return sum(1 for _, woke in self.ticks if start <= woke <= end)


@dataclass
class Lag:
    spooling_worst: float  # the 1 MiB writes in memory
    crossing_worst: float  # the write that rolls over
    run_worst: float  # the whole run: spooling, crossing, closing
    crossing_seconds: float
    crossing_ticks: int


async def spool_and_cross(
    file: Any, is_rolled: Callable[[], bool], ticker: Ticker, chunk: bytes, big: bytes
) -> Lag:
    """32 one-MiB writes in memory, then one 32 MiB write that crosses."""
    await anyio.sleep(0.02)
    start = time.perf_counter()
    for _ in range(LAG_MAX_SIZE // len(chunk)):
        await file.write(chunk)
    assert not is_rolled()
    crossing_start = time.perf_counter()
    await file.write(big)
    crossing_end = time.perf_counter()
    assert is_rolled()
    await file.aclose()
    await anyio.sleep(0.01)
    end = time.perf_counter()
    return Lag(
        ticker.worst(start, crossing_start),
        ticker.worst(crossing_start, crossing_end),
        ticker.worst(start, end),
        crossing_end - crossing_start,
        ticker.count(crossing_start, crossing_end),
    )


async def ours(directory: Path, ticker: Ticker, chunk: bytes, big: bytes) -> Lag:
    file = await atf.SpooledTemporaryFile(LAG_MAX_SIZE, dir=directory)
    return await spool_and_cross(file, lambda: file.rolled, ticker, chunk, big)


async def anyios(directory: Path, ticker: Ticker, chunk: bytes, big: bytes) -> Lag:
    file = anyio.SpooledTemporaryFile(LAG_MAX_SIZE, dir=str(directory))
    return await spool_and_cross(file, lambda: file._rolled, ticker, chunk, big)


def blocking_copy(directory: Path, chunk: bytes) -> float:
    """Seconds the stdlib's rollover of 32 MiB blocks its caller."""
    with stdlib_spooled(LAG_MAX_SIZE + 1, directory) as file:
        for _ in range(LAG_MAX_SIZE // len(chunk)):
            file.write(chunk)
        start = time.perf_counter()
        file.rollover()
        return time.perf_counter() - start


async def blocking_copy_on_the_loop(
    directory: Path, ticker: Ticker, chunk: bytes
) -> float:
    """The median time of the stdlib's blocking copy, run on the loop.

    The ticker must see each one (or it would see nothing anywhere).
    """
    copies: list[float] = []
    for _ in range(ATTEMPTS):
        await anyio.sleep(0.01)
        copy = blocking_copy(directory, chunk)
        end = time.perf_counter()
        copies.append(copy)
        await anyio.sleep(0.005)
        assert ticker.worst(end - copy, end) >= copy / 2
    return statistics.median(copies)


def lag_line(backend: str, blocking: float, **runs: list[Lag]) -> str:
    figures = [f"LOOP-LAG backend={backend}"]
    for name, lags in runs.items():
        figures += [
            f"{name}_worst_ms={min(lag.crossing_worst for lag in lags) * 1e3:.2f}",
            f"{name}_run_worst_ms={min(lag.run_worst for lag in lags) * 1e3:.2f}",
            f"{name}_spooling_worst_ms="
            f"{min(lag.spooling_worst for lag in lags) * 1e3:.2f}",
            f"{name}_crossing_write_ms="
            f"{statistics.median(lag.crossing_seconds for lag in lags) * 1e3:.2f}",
        ]
    figures.append(f"blocking_copy_ms={blocking * 1e3:.2f}")
    return " ".join(figures)


async def measure_lag(
    anyio_backend: Backend, directory: Path
) -> tuple[float, list[Lag], list[Lag]]:
    """The blocking copy's time, and ATTEMPTS runs of ours and of AnyIO's."""
    chunk = b"\xa5" * MiB
    big = b"\x5a" * LAG_MAX_SIZE
    ticker = Ticker()
    our_runs: list[Lag] = []
    anyio_runs: list[Lag] = []
    blocking = 0.0
    async with anyio.create_task_group() as group:
        group.start_soon(ticker.run)
        blocking = await blocking_copy_on_the_loop(directory, ticker, chunk)
        for _ in range(ATTEMPTS):
            our_runs.append(await ours(directory, ticker, chunk, big))
            anyio_runs.append(await anyios(directory, ticker, chunk, big))
        group.cancel_scope.cancel()
    backend = "+".join([backend_name(anyio_backend), *anyio_backend[1]])
    print(lag_line(backend, blocking, ours=our_runs, anyio=anyio_runs))
    return blocking, our_runs, anyio_runs


async def test_rollover_of_32_mib_does_not_block_the_loop(
    anyio_backend: Backend, scratch_dir: Path
) -> None:
    blocking, our_runs, _ = await measure_lag(anyio_backend, scratch_dir)
    assert all(lag.crossing_ticks > 0 for lag in our_runs)  # the loop ran meanwhile
    best = min(lag.crossing_worst for lag in our_runs)
    assert best < blocking / 2
    assert best < LATE
    assert os.listdir(scratch_dir) == []


async def test_in_memory_writes_of_32_mib_do_not_block_the_loop(
    scratch_dir: Path,
) -> None:
    # 32 writes of 1 MiB each, in memory: a loop that only yields one call in
    # 64 is held for all of them.
    chunk = b"\xa5" * MiB
    ticker = Ticker()
    worst: list[float] = []
    fills: list[float] = []
    blocking = 0.0
    async with anyio.create_task_group() as group:
        group.start_soon(ticker.run)
        blocking = await blocking_copy_on_the_loop(scratch_dir, ticker, chunk)
        for _ in range(ATTEMPTS):
            async with atf.SpooledTemporaryFile(2 * LAG_MAX_SIZE) as file:
                await anyio.sleep(0.02)
                start = time.perf_counter()
                for _ in range(LAG_MAX_SIZE // MiB):
                    await file.write(chunk)
                end = time.perf_counter()
                assert not file.rolled
            await anyio.sleep(0.01)  # the tick held up, if any, is recorded
            worst.append(ticker.worst(start, end))
            fills.append(end - start)
        group.cancel_scope.cancel()
    print(
        f"IN-MEMORY-LAG worst_ms={min(worst) * 1e3:.2f}"
        f" fill_ms={min(fills) * 1e3:.2f} blocking_copy_ms={blocking * 1e3:.2f}"
    )
    # Each 1 MiB write yields: the loop is held for one write's copy (a
    # BytesIO growing copies on the loop, as the standard library's does),
    # never for the whole fill, as it was when only one call in 64 yielded.
    assert min(worst) < min(fills) / 2
    assert min(worst) < LATE
