"""TemporaryFile, NamedTemporaryFile, SpooledTemporaryFile and mkstemp."""

from __future__ import annotations

from typing import Any, overload

from anyio import CapacityLimiter
from anyio.lowlevel import checkpoint

from . import _threads
from ._budget import SpoolBudget
from ._cleanup import Closer
from ._create import FileOptions, close_and_remove, open_file, open_named
from ._disk import DiskStorage
from ._file import AsyncSpooledTemporaryFile, AsyncTemporaryFile
from ._modes import BytesPath, OpenBinaryMode, OpenTextMode, StrOrBytesPath, StrPath
from ._names import NameParts, check_name_parts
from ._opener import Opener
from ._spooled import SpooledStorage


def _open_on_disk(
    parts: NameParts[Any],
    options: FileOptions,
    *,
    named: bool,
    delete: bool,
    delete_on_close: bool,
    limiter: CapacityLimiter | None,
) -> Opener[AsyncTemporaryFile[Any]]:
    async def open() -> AsyncTemporaryFile[Any]:
        def make() -> Closer:
            opened = open_file(parts, options, "named" if named else "unnamed")
            return Closer(
                opened.file,
                opened.path,
                delete=delete,
                delete_on_close=delete_on_close,
                linkable=opened.linkable,
            )

        def undo(closer: Closer) -> None:
            # Cancelled creation: the file goes whatever its delete semantics.
            closer.delete = closer.path is not None
            closer.cleanup()

        closer = await _threads.create(make, undo, limiter)
        return AsyncTemporaryFile(DiskStorage(closer, limiter), limiter)

    return Opener(open)


@overload
def TemporaryFile(
    mode: OpenBinaryMode = "w+b",
    buffering: int = -1,
    encoding: None = None,
    newline: None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    *,
    errors: None = None,
    limiter: CapacityLimiter | None = None,
) -> Opener[AsyncTemporaryFile[bytes]]: ...
@overload
def TemporaryFile(
    mode: OpenTextMode,
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    *,
    errors: str | None = None,
    limiter: CapacityLimiter | None = None,
) -> Opener[AsyncTemporaryFile[str]]: ...
@overload
def TemporaryFile(
    mode: str,
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    *,
    errors: str | None = None,
    limiter: CapacityLimiter | None = None,
) -> Opener[AsyncTemporaryFile[Any]]: ...
def TemporaryFile(
    mode: str = "w+b",
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    *,
    errors: str | None = None,
    limiter: CapacityLimiter | None = None,
) -> Opener[AsyncTemporaryFile[Any]]:
    """A temporary file with no name: gone once closed, however that came about.

    On Linux it is opened with ``O_TMPFILE``, so no directory entry ever exists
    (elsewhere, or where the file system refuses that, it is created as
    ``mkstemp`` does and unlinked at once).  ``await`` the result for the open
    file, or use ``async with``.  Creation is one worker-thread call; a
    cancelled creation leaves nothing behind.  Arguments as the standard
    library's; ``limiter`` bounds the worker threads of this file's calls.
    """
    return _open_on_disk(
        check_name_parts(suffix, prefix, dir),
        FileOptions.checked(mode, buffering, encoding, newline, errors),
        named=False,
        delete=True,
        delete_on_close=True,
        limiter=limiter,
    )


@overload
def NamedTemporaryFile(
    mode: OpenBinaryMode = "w+b",
    buffering: int = -1,
    encoding: None = None,
    newline: None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    delete: bool = True,
    *,
    errors: None = None,
    delete_on_close: bool = True,
    limiter: CapacityLimiter | None = None,
) -> Opener[AsyncTemporaryFile[bytes]]: ...
@overload
def NamedTemporaryFile(
    mode: OpenTextMode,
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    delete: bool = True,
    *,
    errors: str | None = None,
    delete_on_close: bool = True,
    limiter: CapacityLimiter | None = None,
) -> Opener[AsyncTemporaryFile[str]]: ...
@overload
def NamedTemporaryFile(
    mode: str,
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    delete: bool = True,
    *,
    errors: str | None = None,
    delete_on_close: bool = True,
    limiter: CapacityLimiter | None = None,
) -> Opener[AsyncTemporaryFile[Any]]: ...
def NamedTemporaryFile(
    mode: str = "w+b",
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    delete: bool = True,
    *,
    errors: str | None = None,
    delete_on_close: bool = True,
    limiter: CapacityLimiter | None = None,
) -> Opener[AsyncTemporaryFile[Any]]:
    """A temporary file with a name (``.name``), created as ``mkstemp`` does.

    Delete semantics, the same on every Python version: with ``delete`` and
    ``delete_on_close`` (the default) it is removed when closed; with
    ``delete_on_close=False`` it survives ``aclose()`` (so it can be reopened by
    name) and is removed when the ``async with`` block exits; with
    ``delete=False`` it is never removed.  ``persist()`` keeps it under a name
    of your choice.  Creation is one worker-thread call; a cancelled creation
    leaves no descriptor and no file.
    """
    return _open_on_disk(
        check_name_parts(suffix, prefix, dir),
        FileOptions.checked(mode, buffering, encoding, newline, errors),
        named=True,
        delete=delete,
        delete_on_close=delete_on_close,
        limiter=limiter,
    )


@overload
def SpooledTemporaryFile(
    max_size: int = 0,
    mode: OpenBinaryMode = "w+b",
    buffering: int = -1,
    encoding: None = None,
    newline: None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    *,
    errors: None = None,
    limiter: CapacityLimiter | None = None,
    budget: SpoolBudget | None = None,
) -> Opener[AsyncSpooledTemporaryFile[bytes]]: ...
@overload
def SpooledTemporaryFile(
    max_size: int,
    mode: OpenTextMode,
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    *,
    errors: str | None = None,
    limiter: CapacityLimiter | None = None,
    budget: SpoolBudget | None = None,
) -> Opener[AsyncSpooledTemporaryFile[str]]: ...
@overload
def SpooledTemporaryFile(
    max_size: int = 0,
    *,
    mode: OpenTextMode,
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    errors: str | None = None,
    limiter: CapacityLimiter | None = None,
    budget: SpoolBudget | None = None,
) -> Opener[AsyncSpooledTemporaryFile[str]]: ...
@overload
def SpooledTemporaryFile(
    max_size: int = 0,
    mode: str = "w+b",
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    *,
    errors: str | None = None,
    limiter: CapacityLimiter | None = None,
    budget: SpoolBudget | None = None,
) -> Opener[AsyncSpooledTemporaryFile[Any]]: ...
def SpooledTemporaryFile(
    max_size: int = 0,
    mode: str = "w+b",
    buffering: int = -1,
    encoding: str | None = None,
    newline: str | None = None,
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    *,
    errors: str | None = None,
    limiter: CapacityLimiter | None = None,
    budget: SpoolBudget | None = None,
) -> Opener[AsyncSpooledTemporaryFile[Any]]:
    """A temporary file kept in memory until it grows past ``max_size``.

    It rolls over to an on-disk ``TemporaryFile`` with the same bytes and
    position when a write would take it past ``max_size`` (0: never by size),
    or when ``fileno()``, ``rollover()`` or a ``truncate()`` past ``max_size`` is
    awaited.  In memory no operation uses a worker thread; the rollover's copy
    always runs in one.  ``rolled`` turns true once a rollover succeeded.

    ``budget``, a :class:`SpoolBudget` shared with other spooled files, caps
    the memory they hold together: a write that would overdraw it rolls this
    file over first.
    """
    if not isinstance(max_size, int):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"max_size must be an int, not {type(max_size).__name__}")
    if budget is not None and not isinstance(budget, SpoolBudget):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"budget must be a SpoolBudget, not {type(budget).__name__}")
    parts = check_name_parts(suffix, prefix, dir)
    options = FileOptions.checked(mode, buffering, encoding, newline, errors)

    async def open() -> AsyncSpooledTemporaryFile[Any]:
        await checkpoint()
        storage = SpooledStorage(max_size, parts, options, limiter, budget)
        return AsyncSpooledTemporaryFile(storage, limiter)

    return Opener(open)


@overload
async def mkstemp(
    suffix: str | None = None,
    prefix: str | None = None,
    dir: StrPath | None = None,
    text: bool = False,
) -> tuple[int, str]: ...
@overload
async def mkstemp(
    suffix: bytes | None = None,
    prefix: bytes | None = None,
    dir: BytesPath | None = None,
    text: bool = False,
) -> tuple[int, bytes]: ...
async def mkstemp(
    suffix: str | bytes | None = None,
    prefix: str | bytes | None = None,
    dir: StrOrBytesPath | None = None,
    text: bool = False,
) -> tuple[int, str | bytes]:
    """Create a file as the standard library's ``mkstemp``: ``(fd, path)``.

    Mode 0600 whatever the umask, opened with ``O_EXCL | O_NOFOLLOW |
    O_CLOEXEC``; the caller owns both the descriptor and the file (nothing is
    deleted for you).  ``text`` is accepted for compatibility (it only matters
    on Windows).  A cancelled call leaves neither behind.
    """
    parts = check_name_parts(suffix, prefix, dir)

    def make() -> tuple[int, str | bytes]:
        return open_named(parts.directory(), parts)

    return await _threads.create(make, lambda made: close_and_remove(*made), None)
