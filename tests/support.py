"""Helpers shared by the test modules (plain functions, no fixtures)."""

from __future__ import annotations

import os


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
