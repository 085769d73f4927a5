"""Fault injection at the system-call layer, for ``test_faults.py``.

:class:`SyscallFaults` replaces the ``os`` functions that the package (and the
standard library's ``tempfile`` and ``shutil``) call, with wrappers that fail
with a chosen errno, but only for paths under one directory (``root``), and only
as the :class:`Rule` says (every call, the Nth, the first N, or once ``space``
bytes were written), so that the event loop, pytest and every other file are
left alone.  The wrappers are thread-safe: the package calls them from worker
threads.

Writes to a file object reach the kernel in C (``FileIO.write``), where no
``os`` function can be patched.  So, for files opened under ``root``, the
patched ``open`` (``builtins.open`` and ``io.open``, which the package and
``tempfile`` call) builds the usual stack -- ``BufferedRandom`` or
``BufferedWriter``, ``TextIOWrapper`` -- over :class:`FaultyFileIO`, a
``FileIO`` whose ``write`` is that of ``write(2)`` with the fault: an ENOSPC
rule with ``space`` gives a short write at the boundary and then the error, as a
filling disk does.  ``os.write``, ``os.pwrite`` and ``os.sendfile`` count
towards the same rules, for code that writes by descriptor.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SYSCALLS = frozenset(
    {"open", "mkdir", "dup", "fsync", "link", "rename", "unlink", "rmdir", "write"}
)

_REAL_OPEN = io.open


def _fd_target(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def resolve(path: object, dir_fd: int | None = None) -> str | None:
    """The absolute path a call names (``None``: it names nothing we can tell)."""
    if isinstance(path, int):
        return _fd_target(path)
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    name = os.fsdecode(os.fspath(path))  # pyright: ignore[reportUnknownArgumentType]
    if not os.path.isabs(name):
        base = os.getcwd() if dir_fd is None else _fd_target(dir_fd)
        if base is None:
            return None
        name = os.path.join(base, name)
    name = os.path.normpath(name)
    if name.startswith("/proc/self/fd/"):
        rest = name[len("/proc/self/fd/") :]
        if rest.isdigit():
            return _fd_target(int(rest))
    return name


@dataclass
class Rule:
    """Fail ``syscall`` with ``code`` for the matching calls under the root.

    The first ``after`` matching calls go through; then ``times`` of them fail
    (``None``: all).  ``match`` narrows the calls (it gets the absolute paths
    the call names).  For ``write``, ``space`` bytes are written first; with
    ``short_write`` the write that crosses it writes what still fits and the
    next one fails, as write(2) does on a full disk.
    """

    syscall: str
    code: int
    after: int = 0
    times: int | None = None
    match: Callable[[tuple[str, ...]], bool] | None = None
    space: int | None = None
    short_write: bool = False
    calls: int = 0
    hits: int = 0
    written: int = 0

    def error(self, filename: object = None, filename2: object = None) -> OSError:
        if filename is None:
            return OSError(self.code, os.strerror(self.code))
        if filename2 is None:
            return OSError(self.code, os.strerror(self.code), filename)
        return OSError(self.code, os.strerror(self.code), filename, None, filename2)


class SyscallFaults:
    """Rules, and the patched functions that obey them.  See the module."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.rules: list[Rule] = []
        self._lock = threading.Lock()

    # -- the test's side -----------------------------------------------------

    def fail(
        self,
        syscall: str,
        code: int,
        *,
        after: int = 0,
        times: int | None = None,
        match: Callable[[tuple[str, ...]], bool] | None = None,
        space: int | None = None,
    ) -> Rule:
        """Add a rule (see :class:`Rule`); it holds until :meth:`clear`."""
        assert syscall in SYSCALLS, syscall
        rule = Rule(
            syscall,
            code,
            after=after,
            times=times,
            match=match,
            space=space,
            short_write=code == errno.ENOSPC,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule: the disk has recovered."""
        with self._lock:
            self.rules.clear()

    def in_scope(self, path: str | None) -> bool:
        root = self.root
        return path is not None and (path == root or path.startswith(root + os.sep))

    # -- the patched side ----------------------------------------------------

    def _matching(self, syscall: str, paths: tuple[str | None, ...]) -> list[Rule]:
        if not any(self.in_scope(path) for path in paths):
            return []
        known = tuple(path for path in paths if path is not None)
        return [
            rule
            for rule in self.rules
            if rule.syscall == syscall and (rule.match is None or rule.match(known))
        ]

    def check(
        self,
        syscall: str,
        paths: tuple[str | None, ...],
        filename: object = None,
        filename2: object = None,
    ) -> None:
        """Raise the rule's error if a rule says this call fails."""
        if not self.rules:
            return
        with self._lock:
            for rule in self._matching(syscall, paths):
                rule.calls += 1
                if rule.calls > rule.after and (
                    rule.times is None or rule.hits < rule.times
                ):
                    rule.hits += 1
                    raise rule.error(filename, filename2)

    def admit_write(self, fd: int, size: int) -> int:
        """How many of ``size`` bytes a write to ``fd`` may write; or raise."""
        if not self.rules:
            return size
        path = _fd_target(fd)
        with self._lock:
            allowed = size
            for rule in self._matching("write", (path,)):
                rule.calls += 1
                if rule.space is None:
                    if rule.calls > rule.after and (
                        rule.times is None or rule.hits < rule.times
                    ):
                        rule.hits += 1
                        raise rule.error()
                    continue
                left = rule.space - rule.written
                if (size and left <= 0) or (left < size and not rule.short_write):
                    rule.hits += 1
                    raise rule.error()
                allowed = min(allowed, left)
            for rule in self._matching("write", (path,)):
                if rule.space is not None:
                    rule.written += allowed
            return allowed

    def install(self, monkeypatch: pytest.MonkeyPatch) -> SyscallFaults:
        def by_path(syscall: str, real: Callable[..., Any]) -> Callable[..., Any]:
            def patched(path: Any, *args: Any, **kwargs: Any) -> Any:
                if self.rules:
                    where = resolve(path, kwargs.get("dir_fd"))
                    self.check(syscall, (where,), path)
                return real(path, *args, **kwargs)

            return patched

        def two_paths(syscall: str, real: Callable[..., Any]) -> Callable[..., Any]:
            def patched(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
                if self.rules:
                    paths = (
                        resolve(src, kwargs.get("src_dir_fd")),
                        resolve(dst, kwargs.get("dst_dir_fd")),
                    )
                    self.check(syscall, paths, src, dst)
                return real(src, dst, *args, **kwargs)

            return patched

        def by_fd(syscall: str, real: Callable[..., Any]) -> Callable[..., Any]:
            def patched(fd: int, *args: Any, **kwargs: Any) -> Any:
                if self.rules:
                    self.check(syscall, (_fd_target(fd),))
                return real(fd, *args, **kwargs)

            return patched

        def writing(real: Callable[..., Any], size_at: int) -> Callable[..., Any]:
            def patched(fd: int, *args: Any) -> Any:
                if not self.rules:
                    return real(fd, *args)
                if size_at < 0:  # os.write, os.pwrite: the data comes first
                    data = memoryview(args[0]).cast("B")
                    allowed = self.admit_write(fd, data.nbytes)
                    return real(fd, data[:allowed], *args[1:])
                count = args[size_at]
                allowed = self.admit_write(fd, count)
                return real(fd, *args[:size_at], allowed, *args[size_at + 1 :])

            return patched

        for name, syscall in (
            ("open", "open"),
            ("mkdir", "mkdir"),
            ("unlink", "unlink"),
            ("remove", "unlink"),
            ("rmdir", "rmdir"),
        ):
            monkeypatch.setattr(os, name, by_path(syscall, getattr(os, name)))
        for name in ("link", "rename", "replace"):
            syscall = "link" if name == "link" else "rename"
            monkeypatch.setattr(os, name, two_paths(syscall, getattr(os, name)))
        for name, syscall in (
            ("dup", "dup"),
            ("fsync", "fsync"),
            ("fdatasync", "fsync"),
        ):
            monkeypatch.setattr(os, name, by_fd(syscall, getattr(os, name)))
        monkeypatch.setattr(os, "write", writing(os.write, -1))
        monkeypatch.setattr(os, "pwrite", writing(os.pwrite, -1))
        # sendfile(out_fd, in_fd, offset, count): the count is the third after out_fd.
        monkeypatch.setattr(os, "sendfile", writing(os.sendfile, 2))
        monkeypatch.setattr(builtins, "open", self.open)
        monkeypatch.setattr(io, "open", self.open)
        return self

    def open(
        self,
        file: Any,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
        closefd: bool = True,
        opener: Callable[[str, int], int] | None = None,
    ) -> Any:
        """``io.open``, with :class:`FaultyFileIO` under the files in ``root``."""
        if not self.in_scope(resolve(file)):
            return _REAL_OPEN(
                file, mode, buffering, encoding, errors, newline, closefd, opener
            )
        modes = set(mode)
        raw_mode = "".join(flag for flag in "xrwa+" if flag in modes)
        raw = FaultyFileIO(file, raw_mode, closefd, opener=opener)
        raw.faults = self
        result: Any = raw
        try:
            line_buffering = False
            if buffering == 1 or (buffering < 0 and raw.isatty()):
                buffering = -1
                line_buffering = True
            if buffering < 0:
                buffering = io.DEFAULT_BUFFER_SIZE
                block_size = os.fstat(raw.fileno()).st_blksize
                if block_size > 1:
                    buffering = block_size
            if buffering == 0:
                if "b" in modes:
                    return raw
                raise ValueError("can't have unbuffered text I/O")
            buffer: io.BufferedIOBase
            if "+" in modes:
                buffer = io.BufferedRandom(raw, buffering)
            elif modes & set("wax"):
                buffer = io.BufferedWriter(raw, buffering)
            else:
                buffer = io.BufferedReader(raw, buffering)
            result = buffer
            if "b" in modes:
                return buffer
            text = io.TextIOWrapper(buffer, encoding, errors, newline, line_buffering)
            result = text
            text.mode = mode  # type: ignore[misc]
            return text
        except BaseException:
            result.close()
            raise


class FaultyFileIO(io.FileIO):
    """A ``FileIO`` whose ``write`` obeys the ``write`` rules of ``faults``."""

    faults: SyscallFaults | None = None

    def write(self, b: Any, /) -> int:
        faults = self.faults
        if faults is not None and faults.rules:
            data = memoryview(b).cast("B")
            allowed = faults.admit_write(self.fileno(), data.nbytes)
            if allowed < data.nbytes:
                written: int = super().write(data[:allowed])
                return written
        result: int = super().write(b)
        return result
