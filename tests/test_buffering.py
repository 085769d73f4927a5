"""The in-loop buffers of disk-backed files, at the sizes where they change.

Small writes collect in a buffer of 64 KiB that doubles, up to 256 KiB, while
the file is written as a stream; small reads come from a read-ahead that grows
the same way (``_buffer.py``).  These tests drive a file across those sizes
and compare every result with the standard library's buffered file doing the
same calls, and count the worker-thread calls the buffers save.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fault_support import ThreadSpy

import anyio_tempfile
from anyio_tempfile._buffer import BATCH, MOST, READ_AHEAD, SMALL, WRITE_CAPACITY

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def _sizes(total: int, seed: int) -> list[int]:
    """Write or read sizes from 1 byte to SMALL, adding up to ``total``."""
    rng = random.Random(seed)
    sizes: list[int] = []
    while total > 0:
        size = min(total, rng.choice([1, 7, 64, 100, 511, 4096, SMALL]))
        sizes.append(size)
        total -= size
    return sizes


async def test_a_stream_of_small_writes_reads_back_exactly(
    anyio_backend: Any, no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random.Random(1).randbytes(3 * MiB)
    spy = ThreadSpy(forbid=False).install(monkeypatch)
    async with await anyio_tempfile.TemporaryFile(dir=no_leaks) as file:
        position = 0
        for size in _sizes(len(data), seed=2):
            assert await file.write(data[position : position + size]) == size
            position += size
        writes_hops = len(spy.hops)
        assert await file.tell() == len(data)
        assert await file.seek(0) == 0
        back = bytearray()
        for size in _sizes(len(data), seed=3):
            chunk = await file.read(size)
            assert len(chunk) == size
            back += chunk
        assert bytes(back) == data
        assert await file.read(64) == b""
        reads_hops = len(spy.hops) - writes_hops
    # The buffer grows: 64, 128 KiB, then 256 KiB a call (a tell() the rest).
    most_calls = 2 + len(data) // MOST + 1
    assert writes_hops <= most_calls, spy.hops
    assert reads_hops <= most_calls + 2, spy.hops
    # Without growth it would take 3 MiB / 64 KiB = 48 calls each way.
    assert len(data) // WRITE_CAPACITY == 48
    assert len(data) // READ_AHEAD == 48


async def test_interleaved_small_calls_match_the_standard_library(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """Reads, writes, seeks and tells mixed, across the buffers' growth."""
    rng = random.Random(4)
    ours = await anyio_tempfile.TemporaryFile(dir=no_leaks)
    with tempfile.TemporaryFile(dir=no_leaks) as theirs:
        async with ours:
            for step in range(4000):
                choice = rng.random()
                if choice < 0.55:
                    piece = rng.randbytes(rng.choice([1, 64, 1000, SMALL]))
                    assert await ours.write(piece) == theirs.write(piece), step
                elif choice < 0.9:
                    size = rng.choice([0, 1, 64, 3000, SMALL])
                    assert await ours.read(size) == theirs.read(size), step
                elif choice < 0.97:
                    assert await ours.tell() == theirs.tell(), step
                else:
                    end = theirs.seek(0, os.SEEK_END)
                    where = rng.randrange(end + 1)
                    assert await ours.seek(where) == theirs.seek(where), step
            theirs.seek(0)
            await ours.seek(0)
            assert await ours.read() == theirs.read()


async def test_flush_after_a_grown_buffer_shows_every_byte_to_other_openers(
    anyio_backend: Any, no_leaks: Path
) -> None:
    async with await anyio_tempfile.NamedTemporaryFile(dir=no_leaks) as file:
        expected = bytearray()
        for index in range(20_000):  # 1.25 MiB in 64 B
            piece = index.to_bytes(4, "big") * 16
            await file.write(piece)
            expected += piece
        await file.flush()
        with open(file.name, "rb") as other:  # noqa: ASYNC230 -- a check, not I/O under test
            assert other.read() == bytes(expected)


async def test_writes_after_reading_go_where_the_reader_is(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """A write behind a read-ahead lands at the read position, not past it."""
    data = bytes(range(256)) * 1024  # 256 KiB
    async with await anyio_tempfile.TemporaryFile(dir=no_leaks) as file:
        await file.write(data)
        await file.seek(0)
        for _ in range(2048):  # 128 KiB in 64 B: read-aheads used up
            await file.read(64)
        assert await file.write(b"X" * 10) == 10
        assert await file.tell() == 128 * 1024 + 10
        assert await file.read(6) == data[128 * 1024 + 10 : 128 * 1024 + 16]
        await file.seek(0)
        expected = data[: 128 * 1024] + b"X" * 10 + data[128 * 1024 + 10 :]
        assert await file.read() == expected


@pytest.mark.parametrize("mode", ["w+b", "w+"])
async def test_a_closed_file_refuses_small_calls_on_the_spot(
    anyio_backend: Any, no_leaks: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    file: Any = await anyio_tempfile.TemporaryFile(mode, dir=no_leaks)
    piece: Any = b"ab" if "b" in mode else "ab"
    await file.write(piece)
    await file.seek(0)
    await file.read(1)  # leave a read-ahead (binary) behind
    await file.aclose()
    spy = ThreadSpy(forbid=True).install(monkeypatch)
    with pytest.raises(ValueError, match="closed file"):
        await file.write(piece)
    with pytest.raises(ValueError, match="closed file"):
        await file.read(1)
    spy.assert_no_thread_used()


@pytest.mark.parametrize(
    ("mode", "piece"), [("w+", b"bytes"), ("w+b", "text"), ("w+b", 12)]
)
async def test_wrong_writes_fail_as_the_standard_librarys(
    anyio_backend: Any, no_leaks: Path, mode: str, piece: Any
) -> None:
    """The fast paths pass on what they cannot take, to the file's own error."""
    with (
        tempfile.TemporaryFile(mode, dir=no_leaks) as plain,
        pytest.raises(TypeError) as theirs,
    ):
        plain.write(piece)
    file: Any = await anyio_tempfile.TemporaryFile(mode, dir=no_leaks)
    async with file:
        with pytest.raises(TypeError) as ours:
            await file.write(piece)
        assert str(ours.value) == str(theirs.value)
        assert await file.tell() == 0


async def test_a_strided_buffer_fails_as_the_standard_librarys(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """Found by the stateful tests: the buffer took what a bytearray refuses."""
    strided = memoryview(b"abcdef")[::2]
    with tempfile.TemporaryFile(dir=no_leaks) as plain:
        with pytest.raises(BufferError) as theirs:
            plain.writelines([strided])
        async with await anyio_tempfile.TemporaryFile(dir=no_leaks) as file:
            with pytest.raises(BufferError) as ours:
                await file.write(strided)
            with pytest.raises(BufferError):
                await file.writelines([strided])  # type: ignore[list-item]
            assert await file.tell() == 0
    assert str(ours.value) == str(theirs.value)


async def test_a_closed_text_file_reports_a_bad_size_first(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """Found by the stateful tests: as the stdlib, the argument before the state."""
    with tempfile.TemporaryFile("w+", dir=no_leaks) as plain:
        pass
    with pytest.raises(Exception) as theirs:  # noqa: PT011 -- compared below
        plain.readline(None)  # type: ignore[arg-type]
    file = await anyio_tempfile.TemporaryFile("w+", dir=no_leaks)
    await file.aclose()
    with pytest.raises(type(theirs.value)) as ours:
        await file.readline(None)
    assert str(ours.value) == str(theirs.value)


async def test_a_closed_unbuffered_file_answers_as_the_standard_librarys(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """Found by the stateful tests: a closed FileIO's readline(0) is b"", no error."""
    with tempfile.TemporaryFile(buffering=0, dir=no_leaks) as plain:
        pass
    assert plain.readline(0) == b""
    file = await anyio_tempfile.TemporaryFile(buffering=0, dir=no_leaks)
    await file.aclose()
    assert await file.readline(0) == b""
    for size in (1, -1):
        with pytest.raises(ValueError, match="closed file"):
            plain.readline(size)
        with pytest.raises(ValueError, match="closed file"):
            await file.readline(size)


async def test_read1_after_a_read_ahead_gives_the_bytes_that_follow(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """read1 makes at most one raw read: never past the end, never out of order.

    How many bytes it gives depends on what the buffers hold: ours read further
    ahead than the standard library's (the stateful tests compare the bytes).
    """
    data = bytes(range(256)) * 40
    async with await anyio_tempfile.TemporaryFile(dir=no_leaks) as file:
        await file.write(data)
        await file.seek(0)
        assert await file.read(1) == data[:1]
        first = await file.read1()
        assert first
        assert first == data[1 : 1 + len(first)]
        assert await file.tell() == 1 + len(first)
        rest = await file.read()
        assert first + rest == data[1:]
        assert await file.read1() == b""


async def test_large_transfers_share_worker_calls_and_read_back_exactly(
    anyio_backend: Any, no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1 MiB writes queue up to BATCH; 1 MiB reads fetch 2, 4, then 8 at once."""
    rng = random.Random(5)
    chunks = [rng.randbytes(MiB) for _ in range(32)]
    spy = ThreadSpy(forbid=False).install(monkeypatch)
    async with await anyio_tempfile.TemporaryFile(dir=no_leaks) as file:
        for chunk in chunks:
            assert await file.write(chunk) == MiB
        writes_hops = len(spy.hops)
        assert await file.tell() == 32 * MiB  # the queue reaches the file first
        assert await file.seek(0) == 0
        hops_before_reads = len(spy.hops)
        for chunk in chunks:
            assert await file.read(MiB) == chunk
        reads_hops = len(spy.hops) - hops_before_reads
        assert await file.read(MiB) == b""
        assert await file.tell() == 32 * MiB
    # The creation; then 8 MiB (BATCH) queue up, and the write that finds the
    # queue full takes it to the file with itself: the 9th, 18th and 27th.
    assert BATCH // MiB == 8
    assert writes_hops == 1 + 3, spy.hops
    # 1 + 2 + 4 + 8 + 8 + 8 + 1 (the rest) reads a call.
    assert reads_hops == 7, spy.hops


async def test_large_transfers_interleaved_match_the_standard_library(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """Large and small reads and writes, seeks and tells mixed, queued or not."""
    rng = random.Random(6)
    sizes = [1, 64, SMALL, SMALL + 1, 100_000, MiB]
    ours = await anyio_tempfile.TemporaryFile(dir=no_leaks)
    with tempfile.TemporaryFile(dir=no_leaks) as theirs:
        async with ours:
            for step in range(600):
                size = rng.choice(sizes)
                choice = rng.random()
                if choice < 0.4:
                    data = rng.randbytes(size)
                    assert await ours.write(data) == theirs.write(data), step
                elif choice < 0.8:
                    # Runs of one size, as streams read.
                    for _ in range(rng.choice([1, 3, 9])):
                        assert await ours.read(size) == theirs.read(size), step
                elif choice < 0.9:
                    target = rng.randrange(0, theirs.seek(0, os.SEEK_END) + 1)
                    theirs.seek(target)
                    assert await ours.seek(target) == target, step
                elif choice < 0.95:
                    assert await ours.tell() == theirs.tell(), step
                else:
                    assert await ours.truncate() == theirs.truncate(), step
            await ours.seek(0)
            theirs.seek(0)
            assert await ours.read() == theirs.read()


def on_disk(name: object) -> bytes:
    """What another opener of the file ``name`` reads."""
    return Path(str(name)).read_bytes()


async def test_queued_large_writes_are_flushed_for_other_openers(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """flush() (and fileno()) write the queue: other openers see every byte."""
    data = bytes(range(256)) * 4096  # 1 MiB
    async with anyio_tempfile.NamedTemporaryFile(dir=no_leaks) as file:
        await file.write(b"head")
        await file.write(data)
        await file.write(b"tail")
        await file.flush()
        assert on_disk(file.name) == b"head" + data + b"tail"
        await file.write(data)
        os.fstat(await file.fileno())
        expected = b"head" + data + b"tail" + data
        assert on_disk(file.name) == expected


async def test_medium_writes_share_worker_calls_up_to_most(
    anyio_backend: Any, no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 KiB writes (upload chunks) queue up to MOST, then go four or five a call."""
    chunk_size = 64 * 1024
    rng = random.Random(7)
    chunks = [rng.randbytes(chunk_size) for _ in range(32)]
    spy = ThreadSpy(forbid=False).install(monkeypatch)
    async with anyio_tempfile.NamedTemporaryFile(dir=no_leaks) as file:
        hops_before = len(spy.hops)
        for chunk in chunks:
            assert await file.write(chunk) == chunk_size
        writes_hops = len(spy.hops) - hops_before
        # MOST holds 4 chunks; the 5th finds the queue full and takes it along:
        # the 5th, 10th, ... 30th write each make a call, 31 and 32 wait.
        assert MOST // chunk_size == 4
        assert writes_hops == 6, spy.hops
        assert on_disk(file.name) == b"".join(chunks[:30])
        await file.flush()
        assert on_disk(file.name) == b"".join(chunks)
        await file.seek(0)
        assert await file.read() == b"".join(chunks)


async def test_medium_writes_mixed_with_small_ones_keep_their_order(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """Small writes buffered between queued medium ones land in call order."""
    rng = random.Random(8)
    sizes = [1, 64, SMALL, SMALL + 1, 64 * 1024, 200_000, MOST]
    ours = await anyio_tempfile.TemporaryFile(dir=no_leaks)
    with tempfile.TemporaryFile(dir=no_leaks) as theirs:
        async with ours:
            for step in range(400):
                data = rng.randbytes(rng.choice(sizes))
                assert await ours.write(data) == theirs.write(data), step
                if rng.random() < 0.05:
                    assert await ours.tell() == theirs.tell(), step
            await ours.seek(0)
            theirs.seek(0)
            assert await ours.read() == theirs.read()


async def test_rewinding_waits_for_the_next_call_that_needs_the_file(
    anyio_backend: Any, no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write, seek(0), read back: the seek is made by the read's worker call."""
    payload = bytes(range(256)) * 16
    async with anyio_tempfile.NamedTemporaryFile(dir=no_leaks) as file:
        spy = ThreadSpy(forbid=False).install(monkeypatch)
        assert await file.write(payload) == len(payload)
        assert await file.seek(0) == 0
        assert spy.hops == []
        assert on_disk(file.name) == b""  # nothing has reached the file yet
        assert await file.read() == payload
        assert len(spy.hops) == 1, spy.hops
        assert await file.seek(0) == 0
        fd = await file.fileno()  # whoever uses the descriptor finds it rewound
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        assert await file.read(10) == payload[:10]


async def test_writes_after_a_waiting_rewind_go_to_the_start(
    anyio_backend: Any, no_leaks: Path
) -> None:
    async with anyio_tempfile.NamedTemporaryFile(dir=no_leaks) as file:
        await file.write(b"0123456789")
        await file.seek(0)
        await file.write(b"ab")  # small: would be buffered, but the seek comes first
        await file.seek(0)
        await file.write(b"Z" * (SMALL + 1))  # queued size: the same
        await file.write(b"cd")
        await file.flush()
        assert on_disk(file.name) == b"Z" * (SMALL + 1) + b"cd"
        assert await file.tell() == SMALL + 3


async def test_rewinds_mixed_with_everything_match_the_standard_library(
    anyio_backend: Any, no_leaks: Path
) -> None:
    """seek(0) often, between buffered and queued writes, reads and truncates."""
    rng = random.Random(9)
    sizes = [0, 1, 64, SMALL, SMALL + 1, 70_000, MOST + 1]
    ours = await anyio_tempfile.TemporaryFile(dir=no_leaks)
    with tempfile.TemporaryFile(dir=no_leaks) as theirs:
        async with ours:
            for step in range(1500):
                choice = rng.random()
                size = rng.choice(sizes)
                if choice < 0.3:
                    data = rng.randbytes(size)
                    assert await ours.write(data) == theirs.write(data), step
                elif choice < 0.55:
                    assert await ours.seek(0) == theirs.seek(0), step
                elif choice < 0.8:
                    assert await ours.read(size) == theirs.read(size), step
                elif choice < 0.85:
                    assert await ours.readline() == theirs.readline(), step
                elif choice < 0.9:
                    assert await ours.tell() == theirs.tell(), step
                elif choice < 0.95:
                    assert await ours.truncate() == theirs.truncate(), step
                else:
                    # Flushed, every byte written is in the file.
                    await ours.flush()
                    theirs.flush()
                    size = os.fstat(theirs.fileno()).st_size
                    assert os.fstat(await ours.fileno()).st_size == size, step
            await ours.seek(0)
            theirs.seek(0)
            assert await ours.read() == theirs.read()


@pytest.mark.parametrize("written", ["", "x", "more\n"])
async def test_a_text_write_after_reading_lines_resets_newlines_at_once(
    anyio_backend: Any, no_leaks: Path, written: str
) -> None:
    """Found by the stateful tests (2,000 sessions): a write resets the decoder.

    The standard library's text file forgets the newlines it has read when it
    is written to; a buffered write must not hide that until the next flush.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=no_leaks) as plain:
        plain.write("one\ntwo\n")
        plain.seek(0)
        plain.readline()
        assert plain.newlines == "\n"
        plain.write(written)
        expected = plain.newlines
        plain.write("later")
        plain.seek(0)
        content = plain.read()
    assert expected is None
    file = await anyio_tempfile.TemporaryFile("w+", encoding="utf-8", dir=no_leaks)
    async with file:
        await file.write("one\ntwo\n")
        await file.seek(0)
        assert await file.readline() == "one\n"
        assert file.newlines == "\n"
        await file.write(written)
        assert file.newlines == expected
        await file.write("later")  # newlines is None again: buffered as before
        await file.seek(0)
        assert await file.read() == content
