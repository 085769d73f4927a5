"""In-loop buffers that spare small reads and writes a worker-thread round trip.

A worker-thread call costs tens of microseconds; a 64-byte write to a buffered
file costs a fraction of one.  So small writes collect here, on the loop, and
reach the file in one worker call when the buffer fills or another operation
needs the file (flush, seek, tell, read, truncate, fileno, persist, close); and
a small binary read takes a read-ahead chunk from one worker call, from which
the next small reads are served.

Bigger transfers of a binary file share worker calls too, since a worker call
costs about what copying a megabyte does.  A ``bytes`` write of more than
``SMALL`` bytes is queued by reference (``bytes`` cannot change under us, so
nothing is copied): a medium one (a framework's 64 KiB upload chunk) while the
queue holds at most ``MOST`` bytes, a large one (``LARGE`` bytes or more) until
it holds ``BATCH``.  The write that finds the queue full takes it to the file
with itself, in one call.  Large reads of one size, one after another, fetch
several chunks of that size in one call (2, then 4, ... up to ``BATCH`` bytes),
each a separate ``bytes``, so that serving them copies nothing.  So a file
holds at most ``BATCH`` bytes of queued writes or of reads fetched ahead, and
at most ``MOST`` while its writes are medium-sized.

A ``seek(0)`` (write, then read it all back) waits too: its result is known
without asking the file, so the next call that needs the file makes it.

The file's semantics are untouched: before any other operation the worker
first *applies* the buffers (seeks back over read-ahead not yet consumed,
writes what is pending, then makes a waiting ``seek(0)``), so the file is
exactly where a plain buffered file would be.  Only the loop touches the
buffers, except inside :meth:`apply`, which a worker runs while the owner
holds its I/O lock.

A buffered call that needs no I/O returns without yielding to the event loop,
as ``asyncio.StreamReader.read`` does with buffered data: a cancellation is
then delivered at the next call that does I/O, at most one buffer later.
"""

from __future__ import annotations

import codecs
import collections
import io
import os
from typing import IO, Any, TextIO, cast

# At most this many bytes (or characters) go through the buffers in one call.
SMALL = 8 * 1024
# Pending writes reach the file once they would pass this many bytes; and a
# small binary read fetches this much at once.  Both double, up to MOST, while
# the file is used as a stream (a buffer filled, or a read-ahead used up, one
# after another): each worker call is then shared by more operations.  Memory
# is only held while data waits: a written buffer is freed.
WRITE_CAPACITY = 64 * 1024
READ_AHEAD = 64 * 1024
MOST = 256 * 1024
# Transfers of at least LARGE bytes share worker calls: writes queued, or
# reads fetched ahead, up to BATCH bytes a call.  Medium writes (past SMALL,
# below LARGE: a framework's 64 KiB upload chunks) are queued only up to MOST,
# so that each of many concurrent files holds little: 4 chunks of 64 KiB share
# a call.
LARGE = 256 * 1024
BATCH = 8 * 1024 * 1024

# Text codecs that encode every ASCII string without fail and byte for byte,
# so that a buffered ASCII write cannot fail later than the stdlib's would.
_ASCII_SAFE = frozenset(
    {"ascii", "utf-8", "latin-1", "iso8859-1", "cp1252", "iso8859-15"}
)


class Buffers:
    """Pending writes and read-ahead of one binary file."""

    __slots__ = (
        "ahead",
        "ahead_size",
        "batch",
        "behind",
        "behind_size",
        "capacity",
        "chunk_size",
        "chunks",
        "offset",
        "pending",
        "reads",
        "rewind",
        "rewound",
        "room",
        "used_up",
        "writes",
    )

    def __init__(self, *, reads: bool, writes: bool) -> None:
        self.reads = reads  # whether reads may be served from here at all
        self.writes = writes  # whether writes may be buffered at all
        self.pending = bytearray()
        # Read ahead, served from offset on.  Only a readable file has any, and
        # only while no write is pending: take_write() drops it first.
        self.ahead = b""
        self.offset = 0
        self.rewind = 0  # bytes to seek back before the pending writes
        # A seek to the start, not made yet: apply() makes it after the pending
        # writes.  Until then writes go to the file (they come after the seek).
        self.rewound = False
        self.capacity = WRITE_CAPACITY  # of pending
        self.ahead_size = READ_AHEAD  # what the next read-ahead fetches
        self.used_up = False  # whether the last read-ahead was read to its end
        # Writes queued, in order, before pending: the callers' bytes, and
        # pending buffers that a queued write followed.
        self.behind: list[bytes | bytearray] = []
        self.behind_size = 0
        # Large reads: chunks of chunk_size fetched ahead, the next one first.
        # chunk_size is the size of the last large read while nothing else came
        # between (apply() resets it), batch how many the next fetch reads.
        self.chunks: collections.deque[bytes] = collections.deque()
        self.chunk_size = 0
        self.batch = 1
        # What a write may add to pending with no other bookkeeping (the owner's
        # fast path): 0 while a read-ahead must be given back first.
        self.room = WRITE_CAPACITY if writes else 0

    @property
    def dirty(self) -> bool:
        """Whether the file's own position or contents lag behind."""
        return (
            bool(self.pending or self.behind or self.chunks)
            or self.rewind > 0
            or self.offset < len(self.ahead)
            or self.rewound
        )

    # -- on the loop ----------------------------------------------------------

    def take_write(self, data: Any) -> int | None:
        """Buffer a small write; its byte count, or ``None`` to go to the file."""
        if not self.writes or self.rewound:
            return None
        if type(data) is bytes:
            size = len(data)
        else:
            try:
                view = memoryview(data)
            except TypeError:
                return None  # the file raises its own error
            if not view.c_contiguous:
                return None  # nor can a bytearray take it: the file's BufferError
            size = view.nbytes
        if size > SMALL:
            return None
        if len(self.pending) + size > self.capacity:
            # Full: this write takes the buffer to the file, and a stream of
            # small writes gets a bigger buffer for the next worker call.
            self.capacity = min(2 * self.capacity, MOST)
            self.room = 0
            return None
        self._give_back_reads()
        self.pending += data
        self.room = self.capacity - len(self.pending)
        return size

    def queue_write(self, data: bytes) -> bool:
        """Queue a ``bytes`` write past ``SMALL``; False if the queue is full."""
        size = len(data)
        limit = BATCH if size >= LARGE else MOST
        if (
            not self.writes
            or self.rewound
            or size <= SMALL
            or self.behind_size + size > limit
        ):
            return False
        self._give_back_reads()
        if self.pending:
            self.behind.append(self.pending)
            self.pending = bytearray()
        self.behind.append(data)
        self.behind_size += size
        self.room = self.capacity
        return True

    def rewind_to_start(self) -> None:
        """Take a seek to the start, made by the next apply() (no I/O now)."""
        self._give_back_reads()
        self.rewound = True
        self.room = 0  # writes now come after the seek: to the file

    def _give_back_reads(self) -> None:
        # A write goes where the reader is, not where reading ahead left the
        # file: the apply seeks back over what was read but not taken.
        if self.ahead:
            self.rewind += len(self.ahead) - self.offset
            self.ahead, self.offset = b"", 0
        if self.chunks:
            self.rewind += sum(map(len, self.chunks))
            self.chunks.clear()
        self.chunk_size = 0

    def take_read(self, size: int) -> bytes | None:
        """Serve a small read from the read-ahead, or ``None``."""
        start = self.offset
        if not self.reads or self.pending or size < 0 or start + size > len(self.ahead):
            return None
        self.offset = start + size
        return self.ahead[start : start + size]

    def take_chunk(self, size: int) -> bytes | None:
        """Serve a large read from the chunks fetched ahead, or ``None``."""
        if not self.chunks or size != self.chunk_size:
            return None
        return self.chunks.popleft()

    def take_line(self, size: int) -> bytes | None:
        """Serve a line from the read-ahead if it ends inside it, or ``None``."""
        if not self.reads or self.pending:
            return None
        start, ahead = self.offset, self.ahead
        end = len(ahead) if size < 0 else min(len(ahead), start + size)
        newline = ahead.find(b"\n", start, end)
        if newline >= 0:
            end = newline + 1
        elif size < 0 or start + size > len(ahead):
            return None  # the line may go on past the read-ahead
        self.offset = end
        return ahead[start:end]

    # -- in the worker, under the owner's I/O lock ----------------------------

    def apply(self, file: IO[Any]) -> None:
        """Bring the file to where the buffered caller believes it is."""
        left = len(self.ahead) - self.offset
        self.used_up = bool(self.ahead) and left < SMALL
        back = self.rewind + left
        if self.chunks:
            back += sum(map(len, self.chunks))
            self.chunks.clear()
        if back:
            file.seek(-back, os.SEEK_CUR)
        self.rewind, self.ahead, self.offset = 0, b"", 0
        self.chunk_size, self.batch = 0, 1
        if self.behind:
            self._write_all(file, [*self.behind, self.pending])
        elif self.pending:
            self._write_all(file, [self.pending])
        if self.rewound:
            # After the writes it followed; kept if they failed, for the retry.
            file.seek(0)
            self.rewound = False
        if self.writes:
            self.room = self.capacity

    def _write_all(self, file: IO[Any], pieces: list[bytes | bytearray]) -> None:
        # Kept until written: a failed write is retried by the next flush, as a
        # buffered writer of the standard library does; but only what the file
        # did not take (a full disk takes a beginning, then fails).
        start = file.tell()
        try:
            for piece in pieces:
                if piece:
                    file.write(piece)
        except BaseException:
            total = sum(map(len, pieces))
            rest = b"".join(pieces)[_taken(file, start, total) :]
            self.behind, self.behind_size = [], 0
            self.pending = bytearray(rest)
            raise
        self.behind, self.behind_size = [], 0
        # A new bytearray, not clear(): the memory is given back either way, and
        # a new one starts small.
        self.pending = bytearray()

    def read_ahead(self, file: IO[Any], size: int) -> bytes:
        """Read ``size`` bytes and keep what follows (see ``READ_AHEAD``)."""
        # Reading on from a read-ahead used up: a stream, fetch more at once.
        if self.used_up:
            self.ahead_size = min(2 * self.ahead_size, MOST)
        else:
            self.ahead_size = READ_AHEAD
        chunk: bytes = file.read(max(size, self.ahead_size))
        self.ahead, self.offset = chunk, min(size, len(chunk))
        if chunk:
            self.room = 0
        return chunk[:size]

    def read_chunks(self, file: IO[Any], size: int, batch: int) -> bytes:
        """Read ``size`` bytes, and up to ``batch - 1`` chunks of it ahead."""
        chunk: bytes = file.read(size)
        last = chunk
        for _ in range(batch - 1):
            if len(last) < size:
                break  # the end
            last = file.read(size)
            if not last:
                break
            self.chunks.append(last)
        if self.chunks:
            self.room = 0  # a write must give them back first
        # Reading on in chunks of this size: fetch twice as many next time.
        self.chunk_size = size
        self.batch = max(1, min(2 * batch, BATCH // size))
        return chunk

    def readline_ahead(self, file: IO[Any], size: int) -> bytes:
        """Read a line, then fill the read-ahead for the lines after it."""
        line: bytes = file.readline(size)
        if line:
            self.ahead, self.offset = file.read(self.ahead_size), 0
            if self.ahead:
                self.room = 0
        return line


class TextBuffers:
    """Pending writes of one text file (its reads are not buffered).

    Only ASCII strings are buffered, and only for codecs that encode them byte
    for byte: they can neither fail to encode nor be encoded differently once
    joined, so buffering changes nothing a caller can see.  Nor while the file
    reports the newlines it has read: a write resets them to ``None``, which
    the caller sees at once in ``newlines``.
    """

    __slots__ = ("_file", "pending", "pending_size")

    # As Buffers, for the owner's fast paths: which always send text on.
    ahead = b""
    offset = 0
    room = 0

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self.pending: list[str] = []
        self.pending_size = 0

    @property
    def dirty(self) -> bool:
        return bool(self.pending)

    def take_write(self, data: Any) -> int | None:
        if type(data) is not str or not data.isascii():
            return None
        if self._file.newlines is not None:
            return None  # the write's reset must show: it goes to the file
        size = len(data)
        if size > SMALL or self.pending_size + size > WRITE_CAPACITY:
            return None
        self.pending.append(data)
        self.pending_size += size
        return size

    def take_read(self, size: int) -> None:
        return None

    def take_line(self, size: int) -> None:
        return None

    def apply(self, file: IO[Any]) -> None:
        if self.pending:
            data = "".join(self.pending)
            binary: IO[bytes] = getattr(file, "buffer")  # noqa: B009
            start = binary.tell()
            try:
                file.write(data)
            except BaseException:
                # ASCII: as many characters as bytes were taken.  Not flushed
                # first (that would change where the stdlib's wrapper reads
                # next), so text of the caller's own still waiting in the
                # wrapper, at most a chunk, would count as ours: the wrapper
                # tells nobody, and forgets it itself when a write fails.
                data = data[_taken(binary, start, len(data)) :]
                self.pending, self.pending_size = [data], len(data)
                raise
            self.pending.clear()
            self.pending_size = 0


def _taken(file: IO[Any], start: int, size: int) -> int:
    """How much of a failed ``size``-byte write ``file`` took from ``start``.

    A disk that fills up takes a beginning of the write (a short write), then
    fails.  That beginning is in the file, and the file's position is past it:
    only the rest may be written again, else it would be there twice.
    """
    try:
        taken = file.tell() - start
    except (OSError, ValueError):
        return 0  # not known: keep it all, as before the write
    return max(0, min(taken, size))


def buffers_for(file: IO[Any]) -> Buffers | TextBuffers | None:
    """The buffers that suit ``file``, or ``None`` if it should have none.

    None for an unbuffered binary file (``buffering=0``) or a line-buffered
    text file: their callers asked for every write to reach the OS at once.
    """
    if isinstance(file, io.TextIOWrapper):
        if file.line_buffering or not file.writable():
            return None
        if codecs.lookup(file.encoding).name not in _ASCII_SAFE:
            return None
        return TextBuffers(cast(TextIO, file))
    if isinstance(file, (io.BufferedRandom, io.BufferedReader, io.BufferedWriter)):
        mode: str = getattr(cast(Any, file), "mode", "")
        append = "a" in mode
        return Buffers(reads=file.readable(), writes=file.writable() and not append)
    return None
