"""Helpers shared by the test modules (plain functions, no fixtures)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any, cast


def open_descriptors() -> set[int]:
    """The descriptors of files and directories this process holds right now.

    Read from /proc/self/fd.  Only those that name a path count: the package
    opens nothing else, while event loops open and close epoll descriptors,
    sockets and pipes of their own (uvloop's first loop, a new asyncio loop) at
    times no test controls.
    """
    found: set[int] = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            continue  # closed since the listing: listdir's own descriptor, say
        if target.startswith("/") and target != "/proc/self/fd":
            found.add(int(name))
    # listdir's descriptor is closed by now; /proc/<pid>/fd may show it anyway.
    return {fd for fd in found if _is_open(fd)}


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def failed_rollover_undone(file: Any) -> Iterator[None]:
    """Around a step on the standard library's ``file``: undo a failed rollover.

    CPython's ``SpooledTemporaryFile.rollover()`` makes the new file on disk
    current (and forgets its arguments) before it copies the data.  When the
    copy fails (the file is closed; a text file mid-iteration refuses
    ``tell()``), the spooled file is left on the new, empty file: its data is
    gone.  Ours raises the same error and keeps the data in memory.  Putting the
    old file back lets the two go on alike.
    """
    if not isinstance(file, tempfile.SpooledTemporaryFile):
        yield
        return
    spooled = cast(Any, file)
    before = spooled._file
    arguments = getattr(spooled, "_TemporaryFileArgs", None)
    try:
        yield
    finally:
        if spooled._file is not before and not spooled._rolled:
            spooled._file.close()
            spooled._file = before
            spooled._TemporaryFileArgs = arguments


class Spooled313(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
    """The standard library's spooled file as of 3.13, on every version.

    Python 3.10's spooled file lacks read1, readinto and readinto1, and before
    3.13 its truncate returns None.  These are the 3.13 methods, word for word.
    """

    def read1(self, *args: Any) -> Any:
        return cast(Any, self)._file.read1(*args)

    def readinto(self, b: Any) -> Any:
        return cast(Any, self)._file.readinto(b)

    def readinto1(self, b: Any) -> Any:
        return cast(Any, self)._file.readinto1(b)

    def truncate(self, size: int | None = None) -> Any:
        file = cast(Any, self)._file
        if size is None:
            return file.truncate()
        if size > cast(Any, self)._max_size:
            self.rollover()
        return cast(Any, self)._file.truncate(size)
