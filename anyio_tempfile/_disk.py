"""A file on disk, driven from worker threads, with in-loop buffers.

An operation that needs the file is one worker-thread call under the owner's
``CapacityLimiter``, made while the storage's I/O lock is held: the pending
buffers (see :mod:`._buffer`) are applied first, in that same call.  Small
reads and writes that the buffers can serve never leave the loop.  A closed
file fails on the loop, without a hop, with the ``ValueError`` a closed
standard-library file raises.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from typing import IO, Any, TypeVar

import anyio
from anyio import CancelScope, CapacityLimiter
from anyio.lowlevel import checkpoint_if_cancelled

from . import _threads
from ._buffer import LARGE, SMALL, Buffers, TextBuffers, buffers_for
from ._cleanup import Closer
from ._keep import link_into_place, rename_into_place

T = TypeVar("T")


class DiskStorage:
    """The I/O of one open on-disk file (binary or text)."""

    __slots__ = ("_buffers", "_busy", "_file", "_limiter", "_lock", "closer")

    def __init__(self, closer: Closer, limiter: CapacityLimiter | None) -> None:
        self.closer = closer
        self._file: IO[Any] = closer.file
        self._limiter = limiter
        self._buffers: Buffers | TextBuffers | None = buffers_for(closer.file)
        self._lock = anyio.Lock(fast_acquire=True)
        # True while a worker has the file (and the buffers): the loop's fast
        # paths then stand aside.
        self._busy = False

    @property
    def wrapped(self) -> IO[Any]:
        return self._file

    @property
    def closed(self) -> bool:
        return self._file.closed

    def _ask_closed(self, method: str, *args: object) -> Any:
        """On the closed file, what its own ``method(*args)`` says.

        A closed file answers on the spot, without I/O: so bad arguments and the
        closed state are reported in the standard library's order, and its few
        answers that are not an error (``FileIO.readline(0)`` is ``b""``) are
        given too.
        """
        return getattr(self._file, method)(*args)

    def _check_open(self) -> None:
        if self._file.closed:
            raise ValueError("I/O operation on closed file.")

    async def _with_file(
        self,
        work: Callable[[IO[Any]], T],
        *,
        finish: bool = False,
        closing: bool = False,
    ) -> T:
        """Run ``work(file)`` in one worker call, after applying the buffers.

        ``finish``: run to the end even if the caller is cancelled (persisting,
        closing).  ``closing``: run ``work`` even if applying the buffers failed
        (that error is raised after): a file is closed whatever its flush said.
        """
        interruption = await self._acquire(shielded=finish)
        try:
            file, buffers = self._file, self._buffers

            def call() -> T:
                if buffers is None or file.closed:
                    return work(file)
                if not closing:
                    buffers.apply(file)
                    return work(file)
                try:
                    buffers.apply(file)
                finally:
                    result = work(file)
                return result

            self._busy = True
            try:
                if finish:
                    result = await _threads.release(call, self._limiter)
                else:
                    result = await _threads.run(call, self._limiter)
            finally:
                self._busy = False
                if file.closed:
                    # Closed: the fast paths must not take what no flush will write.
                    self._buffers = None
        finally:
            self._lock.release()
        if interruption is not None:
            raise interruption
        return result

    async def _acquire(self, *, shielded: bool) -> BaseException | None:
        """Take the I/O lock; shielded, even through native cancellation.

        Returns the native cancellation that a shielded wait absorbed, for the
        caller to raise once its work is done.
        """
        if not shielded:
            await self._lock.acquire()
            return None
        try:
            # Free (the usual case): taken at once, with no scope to shield.
            self._lock.acquire_nowait()
        except anyio.WouldBlock:
            pass
        else:
            return None
        interruption: BaseException | None = None
        while True:
            try:
                with CancelScope(shield=True):
                    await self._lock.acquire()
            except anyio.get_cancelled_exc_class() as exc:
                interruption = interruption or exc
            else:
                return interruption

    async def finish_with(self, work: Callable[[], T], *, closing: bool) -> T:
        """Run ``work()`` after the buffers, in one worker call, to its end.

        For whoever ends the file's life (``atomic_write``'s commit or discard):
        it runs even if the caller is cancelled; with ``closing``, even if the
        buffers could not be written.
        """
        return await self._with_file(lambda _file: work(), finish=True, closing=closing)

    async def _call(self, method: str, *args: object) -> Any:
        if self._file.closed:
            return self._ask_closed(method, *args)
        return await self._with_file(lambda file: getattr(file, method)(*args))

    def read_now(self, size: int | None) -> Any:
        """A small read served from the read-ahead, or ``None``: no I/O, no yield."""
        buffers = self._buffers
        if buffers is None or self._busy or type(size) is not int:
            return None
        ahead, start = buffers.ahead, buffers.offset
        end = start + size
        # A read-ahead exists only on a readable file, and until the next write.
        if not ahead or size < 0 or size > SMALL or end > len(ahead):
            return None
        buffers.offset = end
        return ahead[start:end]

    async def read(self, size: int | None) -> Any:
        if self._file.closed:
            return self._ask_closed("read", size)
        buffers = self._buffers
        if buffers is not None and size is not None and 0 <= size <= SMALL:
            if not self._busy and (chunk := buffers.take_read(size)) is not None:
                return chunk
            if isinstance(buffers, Buffers) and buffers.reads:
                return await self._with_file(
                    lambda file: buffers.read_ahead(file, size)
                )
        elif type(size) is int and size >= LARGE and isinstance(buffers, Buffers):
            if not self._busy and (chunk := buffers.take_chunk(size)) is not None:
                return chunk
            if buffers.reads:
                # Decided here: the call's apply() forgets the streak.
                batch = buffers.batch if size == buffers.chunk_size else 1
                return await self._with_file(
                    lambda file: buffers.read_chunks(file, size, batch)
                )
        return await self._with_file(lambda file: file.read(size))  # type: ignore[arg-type]

    async def readline(self, size: int | None) -> Any:
        if self._file.closed:
            return self._ask_closed("readline", size)
        buffers = self._buffers
        if buffers is not None and size is not None and size <= SMALL:
            if not self._busy and (line := buffers.take_line(size)) is not None:
                return line
            if isinstance(buffers, Buffers) and buffers.reads:
                return await self._with_file(
                    lambda file: buffers.readline_ahead(file, size)
                )
        return await self._with_file(lambda file: file.readline(size))  # type: ignore[arg-type]

    async def read1(self, size: int) -> Any:
        return await self._call("read1", size)

    async def readinto(self, buffer: Any) -> int:
        return await self._call("readinto", buffer)  # type: ignore[no-any-return]

    async def readinto1(self, buffer: Any) -> int:
        return await self._call("readinto1", buffer)  # type: ignore[no-any-return]

    async def readlines(self, hint: int | None) -> list[Any]:
        return await self._call("readlines", hint)  # type: ignore[no-any-return]

    def write_now(self, data: Any) -> int | None:
        """A small write taken into the buffer, or ``None``: no I/O, no yield."""
        buffers = self._buffers
        if buffers is None or self._busy:
            return None
        if type(data) is bytes:
            size = len(data)
            # A text file's buffers have no room: bytes go on, to its TypeError.
            if size <= buffers.room and size <= SMALL:
                buffers.pending += data  # type: ignore[operator]
                buffers.room -= size
                return size
        if self._file.closed:
            return None
        return buffers.take_write(data)

    async def write(self, data: Any) -> int:
        written = self.write_now(data)
        if written is not None:
            return written
        if self._file.closed:
            return self._ask_closed("write", data)  # type: ignore[no-any-return]
        buffers = self._buffers
        if (
            type(data) is bytes
            and isinstance(buffers, Buffers)
            and not self._busy
            and buffers.queue_write(data)
        ):
            return len(data)
        return await self._with_file(lambda file: file.write(data))

    async def writelines(self, lines: Iterable[Any]) -> None:
        self._check_open()
        # Drain the iterable here: a generator must not run in a worker thread.
        pieces = list(lines)
        buffers = self._buffers
        if buffers is not None and not self._busy:
            while pieces and buffers.take_write(pieces[0]) is not None:
                del pieces[0]
            if not pieces:
                return
        await self._with_file(lambda file: file.writelines(pieces))

    async def seek(self, offset: int, whence: int) -> int:
        buffers = self._buffers
        if (
            type(offset) is int
            and offset == 0
            and whence == os.SEEK_SET
            and type(whence) is int
            and isinstance(buffers, Buffers)
            and not self._busy
            and not self._file.closed
        ):
            # Back to the start (write, then read it back): the position is
            # known without asking the file, so the seek waits for the next
            # call that needs the file, after the pending writes.
            buffers.rewind_to_start()
            return 0
        return await self._call("seek", offset, whence)  # type: ignore[no-any-return]

    async def tell(self) -> int:
        return await self._call("tell")  # type: ignore[no-any-return]

    async def truncate(self, size: int | None) -> int:
        return await self._call("truncate", size)  # type: ignore[no-any-return]

    async def flush(self) -> None:
        await self._call("flush")

    async def fileno(self) -> int:
        self._check_open()
        buffers = self._buffers
        if buffers is not None and buffers.dirty:
            # Whoever uses the descriptor must find the data and the position.
            await self._with_file(lambda _file: None)
        return self._file.fileno()

    async def persist(
        self, dest: str | bytes, *, overwrite: bool, fsync: bool
    ) -> str | bytes:
        self._check_open()
        closer = self.closer
        keep = rename_into_place if closer.path is not None else link_into_place
        # Runs to its end even if cancelled: a name given on disk but not yet
        # recorded here would make close() delete the kept file.
        return await self._with_file(
            lambda _file: keep(closer, dest, overwrite=overwrite, fsync=fsync),
            finish=True,
        )

    async def aclose(self, *, at_exit: bool) -> None:
        if self.closer.has_work(at_exit=at_exit):
            finish = self.closer.cleanup if at_exit else self.closer.close
            await self._with_file(lambda _file: finish(), finish=True, closing=True)
        else:
            await checkpoint_if_cancelled()

    def close_now(self) -> None:
        """Close and delete at once, blocking: for the garbage collector only."""
        buffers, file = self._buffers, self._file
        try:
            if buffers is not None and not file.closed:
                with contextlib.suppress(OSError, ValueError):
                    buffers.apply(file)
        finally:
            self.closer.cleanup()
