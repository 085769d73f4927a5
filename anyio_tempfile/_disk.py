"""A file on disk, driven from worker threads.

Each operation is one worker-thread call on the synchronous file object, under
the owner's ``CapacityLimiter``.  A closed file fails on the loop, without a hop,
with the ``ValueError`` a closed standard-library file raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, Any, TypeVar

from anyio import CapacityLimiter
from anyio.lowlevel import checkpoint_if_cancelled

from . import _threads
from ._cleanup import Closer
from ._keep import link_into_place, rename_into_place

T = TypeVar("T")


class DiskStorage:
    """The I/O of one open on-disk file (binary or text)."""

    __slots__ = ("_file", "_limiter", "closer")

    def __init__(self, closer: Closer, limiter: CapacityLimiter | None) -> None:
        self.closer = closer
        self._file: IO[Any] = closer.file
        self._limiter = limiter

    @property
    def wrapped(self) -> IO[Any]:
        return self._file

    @property
    def closed(self) -> bool:
        return self._file.closed

    def _call(self, method: str, *args: object) -> Any:
        if self._file.closed:
            raise ValueError("I/O operation on closed file.")
        return _threads.run(getattr(self._file, method), *args, limiter=self._limiter)

    async def on_file(self, work: Callable[[IO[Any]], T]) -> T:
        """Run ``work(file)`` in one worker-thread call."""
        if self._file.closed:
            raise ValueError("I/O operation on closed file.")
        file = self._file
        return await _threads.run(lambda: work(file), limiter=self._limiter)

    async def read(self, size: int | None) -> Any:
        return await self._call("read", size)

    async def read1(self, size: int) -> Any:
        return await self._call("read1", size)

    async def readinto(self, buffer: Any) -> int:
        return await self._call("readinto", buffer)  # type: ignore[no-any-return]

    async def readinto1(self, buffer: Any) -> int:
        return await self._call("readinto1", buffer)  # type: ignore[no-any-return]

    async def readline(self, size: int | None) -> Any:
        return await self._call("readline", size)

    async def readlines(self, hint: int | None) -> list[Any]:
        return await self._call("readlines", hint)  # type: ignore[no-any-return]

    async def write(self, data: Any) -> int:
        return await self._call("write", data)  # type: ignore[no-any-return]

    async def writelines(self, lines: Iterable[Any]) -> None:
        # Drain the iterable here: a generator must not run in a worker thread.
        await self._call("writelines", list(lines))

    async def seek(self, offset: int, whence: int) -> int:
        return await self._call("seek", offset, whence)  # type: ignore[no-any-return]

    async def tell(self) -> int:
        return await self._call("tell")  # type: ignore[no-any-return]

    async def truncate(self, size: int | None) -> int:
        return await self._call("truncate", size)  # type: ignore[no-any-return]

    async def flush(self) -> None:
        await self._call("flush")

    async def fileno(self) -> int:
        if self._file.closed:
            raise ValueError("I/O operation on closed file.")
        return self._file.fileno()

    async def persist(
        self, dest: str | bytes, *, overwrite: bool, fsync: bool
    ) -> str | bytes:
        closer = self.closer
        keep = rename_into_place if closer.path is not None else link_into_place
        if self._file.closed:
            raise ValueError("I/O operation on closed file.")
        # Runs to its end even if cancelled: a name given on disk but not yet
        # recorded here would make close() delete the kept file.
        return await _threads.release(
            lambda: keep(closer, dest, overwrite=overwrite, fsync=fsync),
            self._limiter,
        )

    async def aclose(self, *, at_exit: bool) -> None:
        if self.closer.has_work(at_exit=at_exit):
            finish = self.closer.cleanup if at_exit else self.closer.close
            await _threads.release(finish, self._limiter)
        else:
            await checkpoint_if_cancelled()

    def close_now(self) -> None:
        """Close and delete at once, blocking: for the garbage collector only."""
        self.closer.cleanup()
