"""The one secure creation path, shared by every file and directory type.

Plain blocking functions, meant to run in a worker thread.  The rules are the
standard library's (``mkstemp``: ``O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC``,
random names, retry on collision), reused through its public ``mkstemp`` and
``mkdtemp``; on top of them the mode is forced to 0600/0700 whatever the umask,
and an unnamed file is opened with ``O_TMPFILE`` where the file system allows.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Literal

from ._names import NameParts

# io.text_encoding (PEP 597) is there from 3.10; typeshed lists it from 3.11.
_text_encoding: Callable[[str | None], str] = getattr(io, "text_encoding")  # noqa: B009

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700

# Without O_EXCL, unlike the standard library: with it, the kernel refuses ever
# to link the file, and persist() links it into place (linkat(2) through
# /proc/self/fd).  Dropping it is safe: only a holder of the descriptor can link
# the file, that is this process or one allowed to ptrace it (which could read
# the data anyway).
_UNNAMED_FLAGS = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

# O_TMPFILE is tried once per directory: a file system that refuses it (tmpfs on
# old kernels, overlayfs, NFS, FUSE) refuses it every time, so remember that and
# go straight to the named fallback there.  A kernel older than 3.11 reads the
# flag as O_DIRECTORY (EISDIR) for every directory, which turns it off for good.
_o_tmpfile_available = hasattr(os, "O_TMPFILE")
_o_tmpfile_refused_in: set[str | bytes] = set()
_O_TMPFILE_REFUSALS = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.EISDIR})


def open_tmpfile(directory: str | bytes) -> int | None:
    """An ``O_TMPFILE`` file in ``directory``, or ``None`` where it is refused."""
    global _o_tmpfile_available
    if not _o_tmpfile_available or directory in _o_tmpfile_refused_in:
        return None
    try:
        fd = os.open(directory, _UNNAMED_FLAGS | os.O_TMPFILE, FILE_MODE)
    except IsADirectoryError:
        _o_tmpfile_available = False
    except OSError as exc:
        if exc.errno in _O_TMPFILE_REFUSALS:
            _o_tmpfile_refused_in.add(directory)
        # Anything else (a missing or unwritable directory) is reported by the
        # named fallback, with the standard library's exception.
    else:
        return _with_mode(fd, FILE_MODE)
    return None


def open_unnamed(directory: str | bytes, parts: NameParts[Any]) -> tuple[int, bool]:
    """Open a file in ``directory`` that has no name: gone once closed.

    Returns the descriptor and whether it can be linked to a name
    (``O_TMPFILE``); the fallback, a named file unlinked at once, cannot.
    """
    fd = open_tmpfile(directory)
    if fd is not None:
        return fd, True
    fd, name = open_named(directory, parts)
    try:
        os.unlink(name)
    except BaseException:
        os.close(fd)
        raise
    return fd, False


def open_named(
    directory: str | bytes, parts: NameParts[Any]
) -> tuple[int, str | bytes]:
    """Create a new file under a random name in ``directory``: ``(fd, path)``."""
    fd, name = tempfile.mkstemp(parts.suffix, parts.prefix, directory)
    try:
        _with_mode(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        _unlink_if_present(name)
        raise
    return fd, name


@dataclass(frozen=True)
class FileOptions:
    """``io.open``'s arguments for a temporary file, checked on the loop."""

    mode: str
    buffering: int
    encoding: str | None
    newline: str | None
    errors: str | None

    @classmethod
    def checked(
        cls,
        mode: str,
        buffering: int,
        encoding: str | None,
        newline: str | None,
        errors: str | None,
    ) -> FileOptions:
        """Check what ``io.open`` checks before it opens anything.

        So that a bad mode fails on the loop, before a file exists, with
        ``io.open``'s own exception and message.
        """
        if not isinstance(mode, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"mode must be str, not {type(mode).__name__}")
        if "U" in mode:
            # Refused since 3.11 (3.10 only warned): 3.13's answer everywhere.
            raise ValueError(f"invalid mode: {mode!r}")
        if "b" not in mode:
            encoding = _text_encoding(encoding)  # warns (PEP 597) on every call
        warns = buffering == 1 and "b" in mode  # open()'s RuntimeWarning, each time
        if (
            type(buffering) is int
            and not warns
            and all(
                value is None or type(value) is str
                for value in (encoding, newline, errors)
            )
        ):
            # Hashable, and a constructor is called with a few argument sets
            # over and over: each set is checked once (only a valid one is
            # remembered; an error is raised afresh every time).
            return _checked_once(mode, buffering, encoding, newline, errors)
        return _check(mode, buffering, encoding, newline, errors)

    @property
    def text(self) -> bool:
        return "b" not in self.mode


def _check(
    mode: str,
    buffering: int,
    encoding: str | None,
    newline: str | None,
    errors: str | None,
) -> FileOptions:
    # open() checks the mode before it opens anything; _refuse stops it there.
    with contextlib.suppress(_Refused):
        open(os.devnull, mode, buffering, encoding, errors, newline, opener=_refuse)  # noqa: SIM115
    if "b" not in mode:
        # What io.open checks only once it has a descriptor: do it now.
        if buffering == 0:
            raise ValueError("can't have unbuffered text I/O")
        io.TextIOWrapper(io.BytesIO(), encoding, errors, newline)
    return FileOptions(mode, buffering, encoding, newline, errors)


_checked_once = functools.lru_cache(maxsize=64)(_check)


class _Refused(Exception):
    pass


def _refuse(_name: object, _flags: int) -> int:
    raise _Refused


@dataclass(frozen=True)
class OpenedFile:
    """A new temporary file: the file object, its path (``None`` if unnamed),
    and whether an unnamed one can be linked to a name (``O_TMPFILE``)."""

    file: IO[Any]
    path: str | bytes | None
    linkable: bool


FileKind = Literal["unnamed", "named", "linkable"]


def open_file(
    parts: NameParts[Any], options: FileOptions, kind: FileKind
) -> OpenedFile:
    """Create a temporary file and open it with ``io.open``.

    ``kind``: ``"unnamed"`` has no name (``O_TMPFILE``, or a named file unlinked
    at once); ``"named"`` is created as ``mkstemp`` does; ``"linkable"`` is an
    ``O_TMPFILE`` file where the file system allows, else a named one, for
    callers that will give it a name.
    The descriptor is made inside
      ``io.open``'s opener, as the standard library does, so that a bad mode or
      encoding closes it (``io.open`` closes what it opened when it fails).
    """
    directory = parts.directory()
    path: str | bytes | None = None
    linkable = False

    def opener(_name: object, _flags: int) -> int:
        nonlocal path, linkable
        if kind == "unnamed":
            fd, linkable = open_unnamed(directory, parts)
            return fd
        if kind == "linkable":
            tmpfile_fd = open_tmpfile(directory)
            if tmpfile_fd is not None:
                linkable = True
                return tmpfile_fd
        fd, path = open_named(directory, parts)
        return fd

    try:
        file = open(  # noqa: SIM115 - the caller owns the file
            directory,
            options.mode,
            buffering=options.buffering,
            encoding=options.encoding,
            errors=options.errors,
            newline=options.newline,
            opener=opener,
        )
    except BaseException:
        if path is not None:
            _unlink_if_present(path)
        raise
    raw: Any = getattr(file, "buffer", file)
    raw = getattr(raw, "raw", raw)
    raw.name = raw.fileno() if path is None else path
    return OpenedFile(file, path, linkable)


def make_directory(directory: str | bytes, parts: NameParts[Any]) -> str | bytes:
    """Create a new directory under a random name in ``directory``; its path."""
    path: str | bytes = os.path.abspath(
        tempfile.mkdtemp(parts.suffix, parts.prefix, directory)
    )
    try:
        if stat.S_IMODE(os.lstat(path).st_mode) != DIRECTORY_MODE:
            _force_directory_mode(path)
    except BaseException:
        os.rmdir(path)
        raise
    return path


def close_and_remove(fd: int, path: str | bytes) -> None:
    """Undo :func:`open_named`."""
    try:
        os.close(fd)
    finally:
        _unlink_if_present(path)


def _with_mode(fd: int, mode: int) -> int:
    # The umask may have taken owner bits away (0o277 gives 0o400); the contract
    # is 0600 whatever the umask, set through the descriptor, so race-free.
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _force_directory_mode(path: str | bytes) -> None:
    # Through a descriptor opened with O_NOFOLLOW, so that a directory swapped
    # for a symlink since mkdir() never lends us its target.  O_PATH opens it
    # even without read permission; chmod then goes through /proc's magic link,
    # which names exactly that inode.
    o_path = getattr(os, "O_PATH", 0)
    if not o_path or not os.path.isdir("/proc/self/fd"):
        os.chmod(path, DIRECTORY_MODE)
        return
    fd = os.open(path, o_path | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.chmod(f"/proc/self/fd/{fd}", DIRECTORY_MODE)
    finally:
        os.close(fd)


def _unlink_if_present(path: str | bytes) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
