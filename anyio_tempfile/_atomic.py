"""atomic_write: replace a file all at once, or not at all."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, AnyStr, Generic, overload

from anyio import CapacityLimiter
from anyio.lowlevel import checkpoint

from . import _threads
from ._cleanup import Closer
from ._create import FileOptions
from ._disk import DiskStorage
from ._file import AsyncTemporaryFile
from ._keep import PendingWrite, commit, discard, open_for_atomic_write
from ._modes import OpenBinaryMode, OpenTextMode, StrOrBytesPath


class AtomicWrite(Generic[AnyStr]):
    """The ``async with`` of :func:`atomic_write`; entered once."""

    __slots__ = (
        "_file",
        "_fsync",
        "_limiter",
        "_options",
        "_overwrite",
        "_path",
        "_pending",
        "_storage",
    )

    def __init__(
        self,
        path: str | bytes,
        options: FileOptions,
        *,
        overwrite: bool,
        fsync: bool,
        limiter: CapacityLimiter | None,
    ) -> None:
        self._path = path
        self._options = options
        self._overwrite = overwrite
        self._fsync = fsync
        self._limiter = limiter
        self._pending: PendingWrite | None = None
        self._storage: DiskStorage | None = None
        self._file: AsyncTemporaryFile[AnyStr] | None = None

    async def __aenter__(self) -> AsyncTemporaryFile[AnyStr]:
        if self._pending is not None:
            raise RuntimeError("this atomic_write was already entered")
        path, options, overwrite = self._path, self._options, self._overwrite
        self._pending = pending = await _threads.create(
            lambda: open_for_atomic_write(path, options, overwrite=overwrite),
            discard,
            self._limiter,
        )
        # Closing it in the body only closes it: the data is named at exit.
        closer = Closer(pending.file, None, delete=False)
        self._storage = DiskStorage(closer, self._limiter)
        # Held until exit, so that the body need not keep it alive.
        self._file = AsyncTemporaryFile(self._storage, self._limiter)
        return self._file

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pending, storage = self._pending, self._storage
        assert pending is not None
        assert storage is not None
        if exc_type is None:
            try:
                # A cancellation that came with the body's last step still
                # means "do not write": a full checkpoint, so that asyncio's
                # native cancellation is seen too, before the point of no return.
                await checkpoint()
            except BaseException:
                await storage.finish_with(lambda: discard(pending), closing=True)
                raise
            overwrite, fsync = self._overwrite, self._fsync
            # The commit runs after the in-loop buffers reach the file; if they
            # cannot, the commit never runs and the data is discarded.
            try:
                await storage.finish_with(
                    lambda: commit(pending, overwrite=overwrite, fsync=fsync),
                    closing=False,
                )
            except BaseException:
                await storage.finish_with(lambda: discard(pending), closing=True)
                raise
        else:
            await storage.finish_with(lambda: discard(pending), closing=True)


@overload
def atomic_write(
    path: StrOrBytesPath,
    mode: OpenBinaryMode = "wb",
    *,
    overwrite: bool = True,
    fsync: bool = True,
    buffering: int = -1,
    encoding: None = None,
    errors: None = None,
    newline: None = None,
    limiter: CapacityLimiter | None = None,
) -> AtomicWrite[bytes]: ...
@overload
def atomic_write(
    path: StrOrBytesPath,
    mode: OpenTextMode,
    *,
    overwrite: bool = True,
    fsync: bool = True,
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    limiter: CapacityLimiter | None = None,
) -> AtomicWrite[str]: ...
@overload
def atomic_write(
    path: StrOrBytesPath,
    mode: str,
    *,
    overwrite: bool = True,
    fsync: bool = True,
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    limiter: CapacityLimiter | None = None,
) -> AtomicWrite[Any]: ...
def atomic_write(
    path: StrOrBytesPath,
    mode: str = "wb",
    *,
    overwrite: bool = True,
    fsync: bool = True,
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    limiter: CapacityLimiter | None = None,
) -> AtomicWrite[Any]:
    """Write a file that readers see either whole or not at all.

    ``async with atomic_write(path) as f`` gives an async file (text modes take
    ``open()``'s text arguments).  The data goes to a temporary file in
    ``path``'s directory, on Linux an unnamed ``O_TMPFILE`` one; when the body
    succeeds it is flushed, fsynced, linked or renamed into place and the
    directory fsynced (``fsync=False`` skips both fsyncs).  On an exception or
    a cancellation ``path`` is untouched and the temporary file is gone; a
    killed process leaves no name behind either (where the file system refuses
    ``O_TMPFILE``, a named temporary file is used instead, which a killed
    process leaves).  The result has the mode a plain ``open()`` would give a
    new file (``0o666`` less the umask), or the mode of the file it replaces.

    ``overwrite=False``: an existing ``path`` is a ``FileExistsError`` before
    the body runs, and again, without a race, at the link (then the data
    written is discarded, and the error says so).
    """
    target = os.fspath(path)
    if not isinstance(target, (str, bytes)):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(
            f"path must be str, bytes or os.PathLike, not {type(path).__name__}"
        )
    options = FileOptions.checked(mode, buffering, encoding, newline, errors)
    if "w" not in mode or "r" in mode or "a" in mode or "x" in mode:
        raise ValueError(f"atomic_write needs a 'w' mode, not {mode!r}")
    return AtomicWrite(
        target, options, overwrite=overwrite, fsync=fsync, limiter=limiter
    )
