"""Fault injection and thread spying for the spooled file's tests.

:class:`OpenFileSpy` stands in for ``open_file`` in ``anyio_tempfile._spooled``
(the rollover's ``_copy_to_disk`` looks it up there at call time).  It opens the
real file, or first runs a hook in the worker (to cancel from inside it, or to
hold the rollover until a test lets it go), or refuses with an ``OSError``; the
file it hands back is a :class:`FileProxy`, which forwards everything to the real
file except ``write``, so that the rollover's copy can be made to fail (and every
write be seen: which layer, which thread, how many bytes).

:class:`ThreadSpy` stands in for ``anyio.to_thread.run_sync`` (the package looks
it up on its module at call time) and for ``threading.Thread.start``: it records
every hop to a worker and every thread started, and, if asked, refuses the hop.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import pytest

import anyio_tempfile._spooled


def os_error(code: int) -> OSError:
    """An ``OSError`` as the kernel gives it: errno and strerror."""
    return OSError(code, os.strerror(code))


@dataclass(frozen=True)
class Write:
    """One write seen by a :class:`FileProxy`.

    ``layer``: ``"file"`` (the file object the rollover opened: bytes in binary
    mode, str in text mode) or ``"buffer"`` (a text file's binary buffer, where
    the rollover copies the encoded bytes).  ``size``: bytes, or characters.
    """

    layer: str
    thread: int
    size: int
    data: bytes | str


class FileProxy:
    """The real file object, except that ``write`` goes through ``spy`` first."""

    __slots__ = ("_layer", "_real", "_spy")

    def __init__(self, real: Any, spy: OpenFileSpy, layer: str = "file") -> None:
        self._real = real
        self._spy = spy
        self._layer = layer

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # pyright: ignore[reportIncompatibleMethodOverride]
        # isinstance() sees the real file's class, as the package's checks do.
        return type(self._real)

    def write(self, data: Any) -> int:
        return self._spy.on_write(self._layer, self._real, data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._real, name)
        if name == "buffer":
            return FileProxy(value, self._spy, "buffer")
        return value


@dataclass
class OpenFileSpy:
    """Stands in for ``_spooled.open_file``; see the module's docstring.

    ``open_error``: errno to refuse the open with (nothing is opened).
    ``copy_error``: errno for the first write of the copy (the raw bytes: the
    ``buffer`` layer in text mode), after ``copied_before_error`` bytes of it
    really went to the file.  ``before_open``: runs in the worker first;
    ``after_copy``: in the worker, once the copy's write has succeeded.
    """

    real: Callable[..., Any]
    open_error: int | None = None
    copy_error: int | None = None
    copied_before_error: int = 0
    before_open: Callable[[], None] | None = None
    after_copy: Callable[[], None] | None = None
    opened: list[Any] = field(default_factory=list)
    open_threads: list[int] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> OpenFileSpy:
        monkeypatch.setattr(anyio_tempfile._spooled, "open_file", self)
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.open_threads.append(threading.get_ident())
        if self.before_open is not None:
            self.before_open()
        if self.open_error is not None:
            raise os_error(self.open_error)
        opened = self.real(*args, **kwargs)
        self.opened.append(opened.file)
        return dataclasses.replace(opened, file=FileProxy(opened.file, self))

    def on_write(self, layer: str, real: Any, data: Any) -> int:
        text = isinstance(data, str)
        payload: bytes | str = data if text else bytes(data)
        size = len(payload)
        with self.lock:
            first_raw = not text and not any(
                write.layer == layer for write in self.writes
            )
            self.writes.append(Write(layer, threading.get_ident(), size, payload))
        if first_raw and self.copy_error is not None:
            if self.copied_before_error:
                real.write(payload[: self.copied_before_error])
            raise os_error(self.copy_error)
        written: int = real.write(data)
        if first_raw and self.after_copy is not None:
            self.after_copy()
        return written

    @property
    def all_closed(self) -> bool:
        """Whether every file this spy opened is closed by now."""
        return all(file.closed for file in self.opened)


def real_open_file() -> Callable[..., Any]:
    """The ``open_file`` that ``_spooled`` uses now (before any spy)."""
    real: Callable[..., Any] = vars(anyio_tempfile._spooled)["open_file"]
    return real


class ThreadRefused(AssertionError):
    """An in-memory operation asked for a worker thread."""


@dataclass
class ThreadSpy:
    """Records (and, if ``forbid``, refuses) every worker-thread hop."""

    forbid: bool
    hops: list[str] = field(default_factory=list)
    worker_threads: set[int] = field(default_factory=set)
    started: list[str] = field(default_factory=list)
    threads_before: set[int | None] = field(default_factory=set)
    count_before: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> ThreadSpy:
        real_run_sync = anyio.to_thread.run_sync
        real_start = threading.Thread.start
        spy = self

        async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            spy.hops.append(getattr(func, "__qualname__", repr(func)))
            if spy.forbid:
                raise ThreadRefused(f"worker thread asked for: {func!r}")

            def recorded() -> Any:
                spy.worker_threads.add(threading.get_ident())
                return func(*args)

            return await real_run_sync(recorded, **kwargs)

        def start(thread: threading.Thread) -> None:
            spy.started.append(thread.name)
            real_start(thread)

        monkeypatch.setattr(anyio.to_thread, "run_sync", run_sync)
        monkeypatch.setattr(threading.Thread, "start", start)
        self.threads_before = {thread.ident for thread in threading.enumerate()}
        self.count_before = threading.active_count()
        return self

    def new_threads(self) -> set[int | None]:
        """Threads alive now that were not when the spy was installed."""
        return {thread.ident for thread in threading.enumerate()} - self.threads_before

    def assert_no_thread_used(self) -> None:
        assert self.hops == [], f"worker-thread hops: {self.hops}"
        assert self.started == [], f"threads started: {self.started}"
        assert self.new_threads() == set()
        assert threading.active_count() <= self.count_before
