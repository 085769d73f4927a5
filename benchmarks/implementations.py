"""One small adapter per implementation, so that every workload is written once.

An adapter only opens things: it hands back the library's own file object
(nothing in between for ``anyio``, ``aiofiles`` and ``ours``), so what is
timed is the library, not the adapter.  The standard library has no awaitable
methods, so its file is put behind :class:`BlockingFile`, whose methods never
yield: the cheapest an awaited call can be, and the loop is blocked throughout.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import IO, Any, ClassVar, Protocol, cast

import aiofiles.tempfile  # type: ignore[import-untyped,unused-ignore]
import anyio

import anyio_tempfile


class BenchFile(Protocol):
    """What the workloads use of a binary temporary file."""

    @property
    def name(self) -> Any: ...
    # Awaitables rather than ``async def``: a method may return its coroutine
    # from a plain ``def`` (ours does, to save a frame per call).
    def write(self, data: bytes, /) -> Awaitable[int]: ...
    def read(self, size: int = -1, /) -> Awaitable[bytes]: ...
    def seek(self, offset: int, whence: int = 0, /) -> Awaitable[int]: ...


FileContext = AbstractAsyncContextManager[BenchFile]
DirectoryContext = AbstractAsyncContextManager[str]


class Implementation(ABC):
    """How one implementation opens each kind of temporary thing, in ``where``."""

    name: ClassVar[str]
    #: The ``anyio.run`` backends it can run on (``aiofiles`` needs asyncio).
    backends: ClassVar[frozenset[str]] = frozenset({"asyncio", "trio"})

    @abstractmethod
    def temporary_file(self, where: str) -> FileContext: ...

    @abstractmethod
    def named_temporary_file(self, where: str) -> FileContext: ...

    @abstractmethod
    def spooled_temporary_file(self, max_size: int, where: str) -> FileContext: ...

    @abstractmethod
    def temporary_directory(self, where: str) -> DirectoryContext: ...

    @abstractmethod
    def is_rolled(self, spooled: Any) -> bool:
        """Whether a spooled file is on disk (a check of the workload's result)."""


# -- stdlib: called straight from the coroutine ---------------------------------


class BlockingFile:
    """A standard-library file behind awaitable methods that never yield."""

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: IO[bytes]) -> None:
        self.wrapped = wrapped

    @property
    def name(self) -> Any:
        return self.wrapped.name

    async def write(self, data: bytes, /) -> int:
        return self.wrapped.write(data)

    async def read(self, size: int = -1, /) -> bytes:
        return self.wrapped.read(size)

    async def seek(self, offset: int, whence: int = 0, /) -> int:
        return self.wrapped.seek(offset, whence)


class _BlockingFileContext:
    def __init__(self, open_file: Callable[..., IO[bytes]], **options: Any) -> None:
        self._open_file = open_file
        self._options = options
        self._file: IO[bytes] | None = None

    async def __aenter__(self) -> BenchFile:
        self._file = file = self._open_file(**self._options)
        return BlockingFile(file)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._file is not None
        self._file.close()


class _BlockingDirectoryContext:
    def __init__(self, where: str) -> None:
        self._where = where
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    async def __aenter__(self) -> str:
        self._directory = tempfile.TemporaryDirectory(dir=self._where)
        return self._directory.name

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._directory is not None
        self._directory.cleanup()


class Stdlib(Implementation):
    """``tempfile`` itself: no thread hop at all, and the loop blocks meanwhile."""

    name = "stdlib"

    def temporary_file(self, where: str) -> FileContext:
        return _BlockingFileContext(tempfile.TemporaryFile, dir=where)

    def named_temporary_file(self, where: str) -> FileContext:
        return _BlockingFileContext(tempfile.NamedTemporaryFile, dir=where)

    def spooled_temporary_file(self, max_size: int, where: str) -> FileContext:
        return _BlockingFileContext(
            tempfile.SpooledTemporaryFile, max_size=max_size, dir=where
        )

    def temporary_directory(self, where: str) -> DirectoryContext:
        return _BlockingDirectoryContext(where)

    def is_rolled(self, spooled: Any) -> bool:
        return bool(spooled.wrapped._rolled)


# -- the async implementations: their own objects, unwrapped --------------------


class AnyIO(Implementation):
    """AnyIO's builtin ``anyio.TemporaryFile`` and friends (since anyio 4.9)."""

    name = "anyio"

    # The casts: AnyIO's AsyncFile gives ``name`` through ``__getattr__``, which
    # pyright does not count as a protocol member.

    def temporary_file(self, where: str) -> FileContext:
        return cast(FileContext, anyio.TemporaryFile(dir=where))

    def named_temporary_file(self, where: str) -> FileContext:
        return cast(FileContext, anyio.NamedTemporaryFile(dir=where))

    def spooled_temporary_file(self, max_size: int, where: str) -> FileContext:
        return cast(FileContext, anyio.SpooledTemporaryFile(max_size, dir=where))

    def temporary_directory(self, where: str) -> DirectoryContext:
        return anyio.TemporaryDirectory(dir=where)

    def is_rolled(self, spooled: Any) -> bool:
        return bool(spooled._rolled)  # no public attribute for it


class Aiofiles(Implementation):
    """``aiofiles.tempfile``: the loop's default executor, asyncio only."""

    name = "aiofiles"
    backends = frozenset({"asyncio"})

    def temporary_file(self, where: str) -> FileContext:
        return aiofiles.tempfile.TemporaryFile(dir=where)  # type: ignore[no-any-return]

    def named_temporary_file(self, where: str) -> FileContext:
        return aiofiles.tempfile.NamedTemporaryFile(dir=where)  # type: ignore[no-any-return]

    def spooled_temporary_file(self, max_size: int, where: str) -> FileContext:
        return aiofiles.tempfile.SpooledTemporaryFile(max_size, dir=where)  # type: ignore[no-any-return]

    def temporary_directory(self, where: str) -> DirectoryContext:
        return aiofiles.tempfile.TemporaryDirectory(dir=where)  # type: ignore[no-any-return]

    def is_rolled(self, spooled: Any) -> bool:
        return bool(spooled._file._rolled)  # the stdlib file it wraps


class Ours(Implementation):
    """``anyio_tempfile``, the package under test."""

    name = "ours"

    def temporary_file(self, where: str) -> FileContext:
        return anyio_tempfile.TemporaryFile(dir=where)

    def named_temporary_file(self, where: str) -> FileContext:
        return anyio_tempfile.NamedTemporaryFile(dir=where)

    def spooled_temporary_file(self, max_size: int, where: str) -> FileContext:
        return anyio_tempfile.SpooledTemporaryFile(max_size, dir=where)

    def temporary_directory(self, where: str) -> DirectoryContext:
        return anyio_tempfile.TemporaryDirectory(dir=where)

    def is_rolled(self, spooled: Any) -> bool:
        return bool(spooled.rolled)


#: In the tables' order; the first is the baseline of the "x stdlib" column.
IMPLEMENTATIONS: tuple[Implementation, ...] = (Stdlib(), AnyIO(), Aiofiles(), Ours())
