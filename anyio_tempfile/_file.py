"""The async file object that every file constructor gives.

One class for the three kinds: what differs between them is the *storage* it
drives (:class:`~._disk.DiskStorage` for ``TemporaryFile`` and
``NamedTemporaryFile``, :class:`~._spooled.SpooledStorage` for
``SpooledTemporaryFile``).  This class owns what they share: the public
signatures, typing over ``str``/``bytes``, iteration, ``async with``, and closing
on garbage collection.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Coroutine, Iterable
from types import TracebackType
from typing import IO, Any, AnyStr, Generic, Protocol, TypeVar, overload

from anyio import CapacityLimiter

from ._modes import BytesPath, StrOrBytesPath, StrPath

_File = TypeVar("_File", bound="AsyncTemporaryFile[Any]")


class Storage(Protocol):
    """What a file kind provides to :class:`AsyncTemporaryFile`."""

    @property
    def wrapped(self) -> IO[Any]: ...
    @property
    def closed(self) -> bool: ...

    def read_now(self, size: int | None) -> Any: ...
    def write_now(self, data: Any) -> int | None: ...
    async def read(self, size: int | None) -> Any: ...
    async def read1(self, size: int) -> Any: ...
    async def readinto(self, buffer: Any) -> int: ...
    async def readinto1(self, buffer: Any) -> int: ...
    async def readline(self, size: int | None) -> Any: ...
    async def readlines(self, hint: int | None) -> list[Any]: ...
    async def write(self, data: Any) -> int: ...
    async def writelines(self, lines: Iterable[Any]) -> None: ...
    async def seek(self, offset: int, whence: int) -> int: ...
    async def tell(self) -> int: ...
    async def truncate(self, size: int | None) -> int: ...
    async def flush(self) -> None: ...
    async def fileno(self) -> int: ...
    async def persist(
        self, dest: str | bytes, *, overwrite: bool, fsync: bool
    ) -> str | bytes: ...
    async def aclose(self, *, at_exit: bool) -> None: ...
    def close_now(self) -> None: ...


class AsyncTemporaryFile(Generic[AnyStr]):
    """An open temporary file, with the standard library's file methods awaited.

    ``AsyncTemporaryFile[bytes]`` in binary modes, ``AsyncTemporaryFile[str]`` in
    text modes.  What it does to the event loop:

    * An operation that needs the file is one call in a worker thread (under
      the ``limiter`` given to the constructor), and a checkpoint.
    * Small writes collect in an in-loop buffer and small binary reads come
      from a read-ahead, so most of them need no worker call: like
      ``asyncio.StreamReader.read`` with buffered data, they return without
      yielding, and a cancellation is delivered at the next call that does I/O,
      at most one buffer later (64 KiB; doubling up to 256 KiB while the file
      is written or read as a stream).  ``bytes`` writes past 8 KiB are queued
      by reference (up to 256 KiB; 8 MiB of writes of 256 KiB or more) and
      share the next worker call.  ``flush()`` hands the data to the OS.
    * An in-memory spooled file works on the loop; a checkpoint comes every 64
      small operations, or every 64 KiB copied, whichever first.

    After :meth:`aclose`, every method raises ``ValueError`` like a closed file.
    ``wrapped`` bypasses the in-loop buffers: ``await flush()`` before using it,
    and close the file with :meth:`aclose`, not through ``wrapped`` (a small
    write would still be taken into the buffer, and fail only at the flush).
    """

    __slots__ = ("__weakref__", "_limiter", "_storage")

    def __init__(self, storage: Storage, limiter: CapacityLimiter | None) -> None:
        self._storage = storage
        self._limiter = limiter

    # -- attributes -----------------------------------------------------------

    @property
    def wrapped(self) -> IO[AnyStr]:
        """The underlying synchronous file object (an escape hatch: it blocks)."""
        return self._storage.wrapped

    @property
    def name(self) -> Any:
        """The path of a named file; the descriptor of an unnamed one.

        ``None`` for a spooled file still in memory, as in the standard library.
        """
        return self._storage.wrapped.name

    @property
    def mode(self) -> str:
        """The mode, as the standard library's file object reports it."""
        return self._storage.wrapped.mode

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self._storage.closed

    @property
    def encoding(self) -> str:
        """The text encoding (text modes only, as in the standard library)."""
        return self._storage.wrapped.encoding  # type: ignore[attr-defined,no-any-return]

    @property
    def errors(self) -> str | None:
        """The text error handler (text modes only)."""
        return self._storage.wrapped.errors  # type: ignore[attr-defined,no-any-return]

    @property
    def newlines(self) -> str | tuple[str, ...] | None:
        """The newlines seen so far when reading (text modes only)."""
        return self._storage.wrapped.newlines  # type: ignore[attr-defined,no-any-return]

    # -- I/O ------------------------------------------------------------------
    # read() and write() first ask the storage whether it can serve the call on
    # the spot (``read_now``/``write_now``: from a buffer, without I/O); the
    # other methods hand back the storage's coroutine instead of awaiting it in
    # one of their own: a frame less either way.

    async def read(self, size: int | None = -1) -> AnyStr:
        """Read up to ``size`` bytes or characters (all, if negative or None)."""
        chunk = self._storage.read_now(size)
        if chunk is None:
            chunk = await self._storage.read(size)
        return chunk  # type: ignore[no-any-return]

    def read1(self, size: int = -1) -> Coroutine[Any, Any, AnyStr]:
        """Read up to ``size`` bytes with at most one raw read (binary only)."""
        return self._storage.read1(size)

    def readinto(self, buffer: Any) -> Coroutine[Any, Any, int]:
        """Read into a writable bytes-like object; the number of bytes read."""
        return self._storage.readinto(buffer)

    def readinto1(self, buffer: Any) -> Coroutine[Any, Any, int]:
        """As :meth:`readinto`, with at most one raw read."""
        return self._storage.readinto1(buffer)

    def readline(self, size: int | None = -1) -> Coroutine[Any, Any, AnyStr]:
        """Read one line (up to ``size`` bytes or characters)."""
        return self._storage.readline(size)

    def readlines(self, hint: int | None = -1) -> Coroutine[Any, Any, list[AnyStr]]:
        """Read the remaining lines (stop once ``hint`` is reached)."""
        return self._storage.readlines(hint)

    async def write(self, data: Any) -> int:
        """Write ``data`` (``bytes``-like or ``str``); the number written."""
        written = self._storage.write_now(data)
        if written is None:
            written = await self._storage.write(data)
        return written

    def writelines(self, lines: Iterable[AnyStr]) -> Coroutine[Any, Any, None]:
        """Write each of ``lines`` (no newlines are added)."""
        return self._storage.writelines(lines)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> Coroutine[Any, Any, int]:
        """Move to ``offset`` relative to ``whence``; the new position.

        On a binary disk-backed file ``seek(0)`` needs no worker call: the next
        call that needs the file makes it, after the buffered writes (whose
        error, if any, that call raises).
        """
        return self._storage.seek(offset, whence)

    def tell(self) -> Coroutine[Any, Any, int]:
        """The current position."""
        return self._storage.tell()

    def truncate(self, size: int | None = None) -> Coroutine[Any, Any, int]:
        """Resize to ``size`` (default: the current position); the new size."""
        return self._storage.truncate(size)

    def flush(self) -> Coroutine[Any, Any, None]:
        """Hand buffered writes to the operating system."""
        return self._storage.flush()

    def fileno(self) -> Coroutine[Any, Any, int]:
        """The file descriptor (a spooled file rolls over to disk first)."""
        return self._storage.fileno()

    @overload
    async def persist(
        self, dest: StrPath, *, overwrite: bool = True, fsync: bool = False
    ) -> str: ...
    @overload
    async def persist(
        self, dest: BytesPath, *, overwrite: bool = True, fsync: bool = False
    ) -> bytes: ...
    async def persist(
        self,
        dest: StrOrBytesPath,
        *,
        overwrite: bool = True,
        fsync: bool = False,
    ) -> str | bytes:
        """Give the temporary file the name ``dest`` for good, atomically.

        Flushes, then renames (``NamedTemporaryFile``) on the same file system: a
        ``dest`` on another one is an ``OSError`` with errno ``EXDEV``.  With
        ``overwrite=False`` an existing ``dest`` is a ``FileExistsError``,
        decided by the link itself (no check-then-act race).  ``fsync=True``
        syncs the data before the name appears and the directory after.  The
        object stays open and usable; closing it deletes nothing.  A failed or
        cancelled persist leaves the temporary file and its data as they were.
        Returns ``dest`` made absolute.  One worker-thread call.
        """
        target = os.fspath(dest)
        if not isinstance(target, (str, bytes)):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"dest must be str, bytes or os.PathLike, not {type(dest).__name__}"
            )
        return await self._storage.persist(target, overwrite=overwrite, fsync=fsync)

    async def aclose(self) -> None:
        """Close the file (and delete it, per its delete semantics).

        The cleanup runs to its end even if the caller is cancelled meanwhile;
        the cancellation is let through afterwards.
        """
        await self._storage.aclose(at_exit=False)

    # -- protocols ------------------------------------------------------------

    async def __aenter__(self: _File) -> _File:
        if self.closed:
            raise ValueError("Cannot enter context with closed file")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Block exit is where delete_on_close=False files are deleted.
        await self._storage.aclose(at_exit=True)

    def __aiter__(self: _File) -> _File:
        return self

    async def __anext__(self) -> AnyStr:
        line: AnyStr = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {state} name={self.name!r} mode={self.mode!r}>"

    def __del__(self) -> None:
        storage = getattr(self, "_storage", None)
        if storage is None:
            return
        if not storage.closed:
            warnings.warn(
                f"unclosed temporary file {self!r}",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        # Closing (and deleting what its semantics say) blocks, but only briefly,
        # and only for a file its owner forgot: as the standard library does.
        storage.close_now()


class AsyncSpooledTemporaryFile(AsyncTemporaryFile[AnyStr]):
    """A spooled temporary file: in memory until ``max_size``, then on disk.

    In memory, every operation runs on the event loop, without a worker
    thread; a checkpoint comes every 64 small operations, or every 64 KiB
    copied, whichever first.  A write that would take the position
    past ``max_size`` first rolls over (the copy runs in a worker thread), as do
    ``fileno()``, ``rollover()`` and a ``truncate()`` past ``max_size``.
    """

    __slots__ = ()

    _storage: Any

    @property
    def rolled(self) -> bool:
        """Whether the data is on disk (turns true once a rollover succeeded)."""
        return self._storage.rolled  # type: ignore[no-any-return]

    @property
    def max_size(self) -> int:
        """The in-memory size above which the file rolls over (0: never by size)."""
        return self._storage.max_size  # type: ignore[no-any-return]

    @property
    def name(self) -> Any:
        return self._storage.name

    @property
    def mode(self) -> str:
        return self._storage.mode  # type: ignore[no-any-return]

    async def rollover(self) -> None:
        """Move the data to disk now (no-op once rolled over)."""
        await self._storage.rollover()
