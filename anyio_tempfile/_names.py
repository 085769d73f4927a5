"""Where temporary files go and what they may be called.

The checks on ``prefix``, ``suffix`` and ``dir`` live here and nowhere else, so a
fix to the rules fixes every constructor at once.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from anyio import to_thread

AnyPath = TypeVar("AnyPath", str, bytes)

# Every separator the platform knows, and NUL: a prefix or suffix holding one of
# these could move the file out of ``dir`` (think of an uploaded file's name).
_FORBIDDEN_STR = tuple(sorted({os.sep, os.altsep or os.sep, "\0"}))
_FORBIDDEN_BYTES = tuple(part.encode() for part in _FORBIDDEN_STR)


@dataclass(frozen=True)
class NameParts(Generic[AnyPath]):
    """Checked ``prefix``, ``suffix`` and ``dir``, all of one type.

    ``dir`` stays ``None`` when the caller gave none: resolving it may touch the
    disk (``tempfile.gettempdir`` probes candidates once), so that is left to the
    worker thread that creates the file.
    """

    prefix: AnyPath
    suffix: AnyPath
    dir: AnyPath | None

    def same_type(self, path: str | bytes) -> AnyPath:
        """``path`` as ``str`` or ``bytes``, whichever these parts are."""
        if isinstance(self.prefix, bytes):
            return os.fsencode(path)
        return os.fsdecode(path)

    def directory(self) -> AnyPath:
        """The directory to create in; may block (call it in a worker thread)."""
        if self.dir is not None:
            return self.dir
        if isinstance(self.prefix, bytes):
            return tempfile.gettempdirb()
        return tempfile.gettempdir()


def _as_path_part(value: object, what: str) -> str | bytes | None:
    if value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(cast("os.PathLike[str] | os.PathLike[bytes]", value))
        return path
    raise TypeError(
        f"{what} must be str, bytes, os.PathLike or None, not {type(value).__name__}"
    )


def check_name_parts(
    suffix: object, prefix: object, dir: object
) -> NameParts[str] | NameParts[bytes]:
    """Check the caller's ``suffix``, ``prefix`` and ``dir`` as ``mkstemp`` does.

    Mixing ``str`` and ``bytes`` is a ``TypeError``, as in the standard library.
    A separator or NUL in ``prefix`` or ``suffix`` is a ``ValueError``: stricter
    than the standard library, so that no name can leave ``dir``.
    """
    parts = (
        _as_path_part(suffix, "suffix"),
        _as_path_part(prefix, "prefix"),
        _as_path_part(dir, "dir"),
    )
    given = [part for part in parts if part is not None]
    if given:
        wants_bytes = isinstance(given[0], bytes)
        if any(isinstance(part, bytes) != wants_bytes for part in given):
            raise TypeError("Can't mix bytes and non-bytes in path components.")
    else:
        # As in the standard library: a bytes ``tempfile.tempdir`` gives bytes.
        wants_bytes = isinstance(tempfile.tempdir, bytes)
    if wants_bytes:
        suffix_b, prefix_b, dir_b = cast("tuple[bytes | None, ...]", parts)
        return _checked(
            NameParts(
                prefix=tempfile.gettempprefixb() if prefix_b is None else prefix_b,
                suffix=b"" if suffix_b is None else suffix_b,
                dir=dir_b,
            ),
            _FORBIDDEN_BYTES,
        )
    suffix_s, prefix_s, dir_s = cast("tuple[str | None, ...]", parts)
    return _checked(
        NameParts(
            prefix=tempfile.gettempprefix() if prefix_s is None else prefix_s,
            suffix="" if suffix_s is None else suffix_s,
            dir=dir_s,
        ),
        _FORBIDDEN_STR,
    )


def _checked(
    parts: NameParts[AnyPath], forbidden: tuple[AnyPath, ...]
) -> NameParts[AnyPath]:
    for what, part in (("prefix", parts.prefix), ("suffix", parts.suffix)):
        if any(character in part for character in forbidden):
            raise ValueError(
                f"{what} must not contain a path separator or NUL: {part!r}"
            )
    return parts


_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_random = random.SystemRandom()


def candidate_names() -> Iterator[str]:
    """Random names as the standard library makes them (8 of [a-z0-9_]).

    ``TMP_MAX`` of them, after which creation gives up, as ``mkstemp`` does.
    Drawn from ``os.urandom``, so a forked child never repeats its parent's.
    """
    for _ in range(tempfile.TMP_MAX):
        yield tempfile.gettempprefix() + "".join(_random.choices(_NAME_CHARACTERS, k=8))


def gettempprefix() -> str:
    """The default prefix of temporary names, as ``str`` (no I/O)."""
    return tempfile.gettempprefix()


def gettempprefixb() -> bytes:
    """The default prefix of temporary names, as ``bytes`` (no I/O)."""
    return tempfile.gettempprefixb()


async def gettempdir() -> str:
    """The default directory for temporary files, as ``str``.

    The first call probes candidate directories by creating a file in them, in a
    worker thread; later calls return the cached answer without leaving the loop
    (the cache is the standard library's own, ``tempfile.tempdir``).
    """
    if tempfile.tempdir is None:
        return await to_thread.run_sync(tempfile.gettempdir)
    return os.fsdecode(tempfile.tempdir)


async def gettempdirb() -> bytes:
    """The default directory for temporary files, as ``bytes`` (see gettempdir)."""
    if tempfile.tempdir is None:
        return await to_thread.run_sync(tempfile.gettempdirb)
    return os.fsencode(tempfile.tempdir)
