"""TemporaryDirectory and mkdtemp."""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator
from types import TracebackType
from typing import Any, AnyStr, Generic, TypeVar, cast, overload

from anyio import CapacityLimiter

from . import _threads
from ._create import make_directory
from ._modes import BytesPath, StrOrBytesPath, StrPath
from ._names import NameParts, check_name_parts
from ._rmtree import rmtree

_Directory = TypeVar("_Directory", bound="TemporaryDirectory[Any]")


class TemporaryDirectory(Generic[AnyStr]):
    """A temporary directory, removed with everything in it when done.

    ``async with TemporaryDirectory() as path`` gives its path (``str``, or
    ``bytes`` if the arguments were bytes) and removes it when the block exits;
    ``directory = await TemporaryDirectory()`` creates it now, ``directory.name``
    holds the path and ``await directory.cleanup()`` removes it.  The object is
    awaited or entered once.  ``delete=False`` keeps the directory at block exit;
    ``ignore_cleanup_errors=True`` swallows errors while removing.

    Removal works through descriptors, on every Python version: read-only
    entries are removed too, a symlink is removed and never followed, and no
    permission outside the tree is ever changed.  Creation and removal each run
    in one worker-thread call, finish even when cancelled, and leave nothing
    behind a cancelled creation.
    """

    @overload
    def __init__(
        self: TemporaryDirectory[str],
        suffix: str | None = None,
        prefix: str | None = None,
        dir: StrPath | None = None,
        ignore_cleanup_errors: bool = False,
        *,
        delete: bool = True,
        limiter: CapacityLimiter | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: TemporaryDirectory[bytes],
        suffix: bytes | None = None,
        prefix: bytes | None = None,
        dir: BytesPath | None = None,
        ignore_cleanup_errors: bool = False,
        *,
        delete: bool = True,
        limiter: CapacityLimiter | None = None,
    ) -> None: ...
    def __init__(
        self,
        suffix: str | bytes | None = None,
        prefix: str | bytes | None = None,
        dir: StrOrBytesPath | None = None,
        ignore_cleanup_errors: bool = False,
        *,
        delete: bool = True,
        limiter: CapacityLimiter | None = None,
    ) -> None:
        self._parts: NameParts[Any] = check_name_parts(suffix, prefix, dir)
        self._ignore_cleanup_errors = ignore_cleanup_errors
        self._delete = delete
        self._limiter = limiter
        self._path: AnyStr | None = None
        self._awaited = False
        self._entered = False
        self._cleaned_up = False

    @property
    def name(self) -> AnyStr:
        """The directory's absolute path."""
        if self._path is None:
            raise AttributeError(
                "the directory does not exist yet: await TemporaryDirectory() "
                "or enter it with async with"
            )
        return self._path

    async def _create(self) -> None:
        parts = self._parts
        path = await _threads.create(
            lambda: make_directory(parts.directory(), parts), os.rmdir, self._limiter
        )
        self._path = cast(AnyStr, path)

    def __await__(self: _Directory) -> Generator[Any, None, _Directory]:
        if self._awaited or self._entered:
            raise RuntimeError("this TemporaryDirectory was already awaited or entered")
        self._awaited = True
        return self._created().__await__()

    async def _created(self: _Directory) -> _Directory:
        await self._create()
        return self

    async def __aenter__(self) -> AnyStr:
        if self._entered:
            raise RuntimeError("this TemporaryDirectory was already entered")
        self._entered = True
        if self._path is None:
            if self._awaited:
                raise RuntimeError("this TemporaryDirectory is still being created")
            await self._create()
        return self.name

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._delete:
            await self.cleanup()

    async def cleanup(self) -> None:
        """Remove the directory and everything in it, now.

        A directory already gone is no error; calling it again removes whatever
        has reappeared at the path.  Runs to its end even if cancelled.
        """
        path = self.name
        self._cleaned_up = True
        ignore_errors = self._ignore_cleanup_errors
        await _threads.release(
            lambda: rmtree(path, ignore_errors=ignore_errors), self._limiter
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._path!r}>"

    def __del__(self) -> None:
        path = getattr(self, "_path", None)
        if path is None or self._cleaned_up or not self._delete:
            return
        warnings.warn(
            f"Implicitly cleaning up {self!r}",
            ResourceWarning,
            stacklevel=2,
            source=self,
        )
        # Blocks the loop briefly, but only for a directory its owner forgot, as
        # the standard library's finalizer does.
        rmtree(path, ignore_errors=True)


@overload
async def mkdtemp(
    suffix: str | None = None, prefix: str | None = None, dir: StrPath | None = None
) -> str: ...
@overload
async def mkdtemp(
    suffix: bytes | None = None,
    prefix: bytes | None = None,
    dir: BytesPath | None = None,
) -> bytes: ...
async def mkdtemp(
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
) -> str | bytes:
    """Create a directory as the standard library's ``mkdtemp``; its absolute path.

    Mode 0700 whatever the umask.  The caller removes it.  A cancelled call
    leaves no directory behind.
    """
    parts = check_name_parts(suffix, prefix, dir)
    return await _threads.create(
        lambda: make_directory(parts.directory(), parts), os.rmdir, None
    )
