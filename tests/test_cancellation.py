"""Cancellation, swept: every await point of every operation, every way to cancel.

No list of await points is written by hand.  ``cancellation_support.Probe`` stands in
for ``anyio.to_thread.run_sync`` and ``anyio.lowlevel.checkpoint``; an uncancelled run
numbers an operation's await points; then the operation runs again once per point
and style of cancellation:

* an AnyIO scope cancelled just before the point, or from the worker thread of the
  point (before its work), or right after the last point;
* on asyncio, ``Task.cancel()`` just before the point, or from its worker (before
  the work, at the first system call of the work, after the work), three times over
  and again before the next two points, or right after the last point.

After each run the state must be what the delete semantics say (``verify`` of each
trial), no descriptor may be left open, the worker must have been waited for, and
the cancellation must reach the caller.  API.md, "Cancellation and the event loop":
cancelled creation leaks nothing; ``aclose()``, ``cleanup()`` and every ``async with``
exit finish their cleanup, then let the cancellation through; a cancelled rollover
leaves the data intact.
"""

from __future__ import annotations

import asyncio
import os
import random
import stat
from collections.abc import Awaitable, Callable, Generator
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
from cancellation_support import (
    BodyError,
    Outcome,
    Probe,
    Sweeper,
    SweepReport,
    Trial,
    listing,
)
from support import open_descriptors

import anyio_tempfile as atf

pytestmark = pytest.mark.anyio

S = TypeVar("S", str, bytes)
F_co = TypeVar("F_co", covariant=True)

DATA = bytes(range(256)) * 2
HEAD, TAIL = DATA[:40], DATA[40:140]
TEXT_HEAD = "naïve café, ünïcödé\n" * 2
TEXT_TAIL = "zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich\n" * 2
KEPT = "kept.bin"


class AsyncFile(Protocol[S]):
    """The part of the package's async file object that these tests use."""

    @property
    def closed(self) -> bool: ...
    @property
    def name(self) -> Any: ...
    def write(self, data: S) -> Awaitable[int]: ...
    def read(self, size: int | None = -1) -> Awaitable[S]: ...
    def seek(self, offset: int, whence: int = 0) -> Awaitable[int]: ...
    def tell(self) -> Awaitable[int]: ...
    def flush(self) -> Awaitable[None]: ...
    def aclose(self) -> Awaitable[None]: ...
    def persist(
        self,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = True,
        fsync: bool = False,
    ) -> Awaitable[Any]: ...


class SpooledFile(AsyncFile[S], Protocol[S]):
    @property
    def rolled(self) -> bool: ...
    def rollover(self) -> Awaitable[None]: ...


class Opening(Protocol[F_co]):
    """What a file constructor returns: awaitable, or entered with ``async with``."""

    def __await__(self) -> Generator[Any, None, F_co]: ...
    def __aenter__(self) -> Awaitable[F_co]: ...
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Awaitable[None]: ...


Kind = Literal["temporary", "named", "spooled"]


class FileSpec:
    """Which file to make: kind, delete semantics, mode; and what is left when."""

    def __init__(
        self,
        kind: Kind,
        *,
        delete: bool = True,
        delete_on_close: bool = True,
        max_size: int = 0,
    ) -> None:
        self.kind = kind
        self.delete = delete
        self.delete_on_close = delete_on_close
        self.max_size = max_size

    @property
    def named(self) -> bool:
        return self.kind == "named"

    def opening(self, directory: Path) -> Opening[AsyncFile[bytes]]:
        if self.kind == "temporary":
            return atf.TemporaryFile(dir=directory)
        if self.kind == "named":
            return atf.NamedTemporaryFile(
                dir=directory, delete=self.delete, delete_on_close=self.delete_on_close
            )
        return atf.SpooledTemporaryFile(self.max_size, dir=directory)

    def on_disk(self, *, rolled: bool = False) -> int:
        """Descriptors the open file holds."""
        return 0 if self.kind == "spooled" and not rolled else 1

    def kept_after_aclose(self) -> bool:
        return self.named and not (self.delete and self.delete_on_close)

    def kept_after_exit(self) -> bool:
        return self.named and not self.delete

    def label(self) -> str:
        if self.kind == "named":
            return f"named[delete={self.delete},delete_on_close={self.delete_on_close}]"
        if self.kind == "spooled" and self.max_size:
            return f"spooled[max_size={self.max_size}]"
        return self.kind


NAMED_SPECS = [
    FileSpec("named", delete=delete, delete_on_close=on_close)
    for delete in (True, False)
    for on_close in (True, False)
]
FILE_SPECS = [FileSpec("temporary"), *NAMED_SPECS, FileSpec("spooled")]


def base(name: str | bytes) -> str:
    return os.path.basename(os.fsdecode(name))


def is_directory(path: str) -> bool:
    return os.path.isdir(path)


def read_by_name(path: str | bytes | Path) -> bytes:
    with open(path, "rb") as reopened:
        return reopened.read()


def check(problems: list[str], ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


def check_fds(problems: list[str], extra_fds: int, expected: int) -> None:
    check(
        problems, extra_fds == expected, f"{extra_fds} new descriptors, not {expected}"
    )


def check_listing(problems: list[str], directory: Path, expected: list[str]) -> None:
    found = listing(directory)
    check(problems, found == sorted(expected), f"dir holds {found}, not {expected}")


# --------------------------------------------------------------------------- #
# The trials: one operation each, and what its outcome may leave behind
# --------------------------------------------------------------------------- #


class CreateFile(Trial):
    """``await`` a file constructor."""

    def __init__(self, directory: Path, spec: FileSpec) -> None:
        super().__init__(directory)
        self.spec = spec
        self.uses_threads = spec.kind != "spooled"
        self.file: AsyncFile[bytes] | None = None

    async def run(self) -> None:
        self.file = await self.spec.opening(self.dir)

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        file = self.file
        if file is None:
            check_fds(problems, extra_fds, 0)
            check_listing(problems, self.dir, [])
            return problems
        check_fds(problems, extra_fds, self.spec.on_disk())
        name = [base(file.name)] if self.spec.named else []
        check_listing(problems, self.dir, name)
        await file.write(DATA)
        await file.seek(0)
        check(problems, await file.read() == DATA, "the new file does not work")
        await file.aclose()
        check_listing(problems, self.dir, name if self.spec.kept_after_aclose() else [])
        return problems

    async def teardown(self) -> None:
        if self.file is not None and not self.file.closed:
            await self.file.aclose()
        await super().teardown()


class CreateTextFile(CreateFile):
    """``await NamedTemporaryFile("w+", encoding=...)``: a file wrapped for text."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, FileSpec("named"))
        self.text: AsyncFile[str] | None = None

    async def run(self) -> None:
        self.text = await atf.NamedTemporaryFile("w+", encoding="utf-8", dir=self.dir)

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        text = self.text
        if text is None:
            check_fds(problems, extra_fds, 0)
            check_listing(problems, self.dir, [])
            return problems
        check_fds(problems, extra_fds, 1)
        check_listing(problems, self.dir, [base(text.name)])
        await text.aclose()
        check_listing(problems, self.dir, [])
        return problems

    async def teardown(self) -> None:
        if self.text is not None and not self.text.closed:
            await self.text.aclose()
        await super().teardown()


class MakeTemp(Trial):
    """``mkstemp()`` or ``mkdtemp()``: the caller owns what they return."""

    def __init__(self, directory: Path, *, directory_too: bool) -> None:
        super().__init__(directory)
        self.directory_too = directory_too
        self.path: str | None = None
        self.fd: int | None = None

    async def run(self) -> None:
        if self.directory_too:
            self.path = await atf.mkdtemp(dir=str(self.dir))
        else:
            self.fd, self.path = await atf.mkstemp(dir=str(self.dir))

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        if self.path is None:
            check_fds(problems, extra_fds, 0)
            check_listing(problems, self.dir, [])
            return problems
        check_fds(problems, extra_fds, 0 if self.directory_too else 1)
        check_listing(problems, self.dir, [base(self.path)])
        is_dir = is_directory(self.path)
        check(problems, is_dir == self.directory_too, "made the wrong kind of entry")
        return problems

    async def teardown(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        await super().teardown()


class CreateDirectory(Trial):
    """``await TemporaryDirectory()``."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.made: atf.TemporaryDirectory[str] | None = None

    async def run(self) -> None:
        self.made = await atf.TemporaryDirectory(dir=str(self.dir))

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        check_fds(problems, extra_fds, 0)
        if self.made is None:
            check_listing(problems, self.dir, [])
            return problems
        check_listing(problems, self.dir, [base(self.made.name)])
        await self.made.cleanup()
        check_listing(problems, self.dir, [])
        return problems


class CloseFile(Trial):
    """``aclose()`` of an open file holding unflushed data."""

    def __init__(
        self, directory: Path, spec: FileSpec, *, rolled: bool = False
    ) -> None:
        super().__init__(directory)
        self.spec = spec
        self.rolled = rolled
        self.uses_threads = spec.kind != "spooled" or rolled
        self.file: AsyncFile[bytes] | None = None
        self.name = ""

    async def setup(self) -> None:
        self.file = file = await self.spec.opening(self.dir)
        await file.write(DATA)
        if self.rolled:
            spooled: Any = file
            await spooled.rollover()
        if self.spec.named:
            self.name = base(file.name)

    async def run(self) -> None:
        assert self.file is not None
        await self.file.aclose()

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        assert self.file is not None
        check(problems, self.file.closed, "the file is still open")
        check_fds(problems, extra_fds, 0)
        if self.spec.kept_after_aclose():
            check_listing(problems, self.dir, [self.name])
            kept = read_by_name(self.dir / self.name)
            check(problems, kept == DATA, f"the kept file holds {len(kept)} bytes")
        else:
            check_listing(problems, self.dir, [])
        await self.file.aclose()  # again: a no-op
        return problems

    async def teardown(self) -> None:
        if self.file is not None and not self.file.closed:
            await self.file.aclose()
        await super().teardown()


class FileBlock(Trial):
    """``async with constructor as f:`` a write (crossing max_size, for spooled)."""

    #: The body's write is plain I/O, not a cleanup: on a native cancellation it
    #: need not wait for its worker (AnyIO's own files do not either).
    waits_for_workers = False

    def __init__(self, directory: Path, spec: FileSpec, *, body_raises: bool) -> None:
        super().__init__(directory)
        self.spec = spec
        self.body_raises = body_raises
        self.uses_threads = spec.kind != "spooled" or spec.max_size > 0
        self.file: AsyncFile[bytes] | None = None
        self.name = ""

    async def run(self) -> None:
        async with self.spec.opening(self.dir) as file:
            self.file = file
            if self.spec.named:
                self.name = base(file.name)
            await file.write(DATA)
            if self.body_raises:
                raise BodyError

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        check_fds(problems, extra_fds, 0)
        if self.file is None:
            check_listing(problems, self.dir, [])
            return problems
        check(problems, self.file.closed, "the file is still open after the block")
        kept = [self.name] if self.spec.kept_after_exit() else []
        check_listing(problems, self.dir, kept)
        return problems

    async def teardown(self) -> None:
        if self.file is not None and not self.file.closed:
            await self.file.aclose()
        await super().teardown()


def populate(path: str) -> None:
    """Files, a subdirectory, read-only entries."""
    root = Path(path)
    (root / "file").write_bytes(DATA)
    sub = root / "sub"
    sub.mkdir()
    (sub / "inner").write_bytes(DATA)
    locked = root / "locked"
    locked.mkdir()
    (locked / "read-only").write_bytes(DATA)
    (locked / "read-only").chmod(stat.S_IRUSR)
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)


class DirectoryBlock(Trial):
    """``async with TemporaryDirectory() as path:`` fill it, then an await point."""

    def __init__(self, directory: Path, *, delete: bool, body_raises: bool) -> None:
        super().__init__(directory)
        self.delete = delete
        self.body_raises = body_raises
        self.path: str | None = None

    async def run(self) -> None:
        async with atf.TemporaryDirectory(
            dir=str(self.dir), delete=self.delete
        ) as path:
            self.path = path
            # Filled on the loop, so that no worker of the body's own outlives a
            # native cancellation and races the cleanup; then one await point.
            populate(path)
            await anyio.lowlevel.checkpoint()
            if self.body_raises:
                raise BodyError

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        check_fds(problems, extra_fds, 0)
        kept = [base(self.path)] if self.path is not None and not self.delete else []
        check_listing(problems, self.dir, kept)
        return problems


class CleanUpDirectory(Trial):
    """``await directory.cleanup()`` of a populated TemporaryDirectory."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.made: atf.TemporaryDirectory[str] | None = None

    async def setup(self) -> None:
        self.made = await atf.TemporaryDirectory(dir=str(self.dir))
        populate(self.made.name)

    async def run(self) -> None:
        assert self.made is not None
        await self.made.cleanup()

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        assert self.made is not None
        check_fds(problems, extra_fds, 0)
        check_listing(problems, self.dir, [])
        await self.made.cleanup()  # again: the directory is gone, no error
        return problems


class Rollover(Trial):
    """``await spooled.rollover()``, the position in the middle of the data."""

    def __init__(self, directory: Path, *, text: bool) -> None:
        super().__init__(directory)
        self.text = text
        self.binary: SpooledFile[bytes] | None = None
        self.textual: SpooledFile[str] | None = None
        self.position = 0

    async def setup(self) -> None:
        if self.text:
            self.textual = file = await atf.SpooledTemporaryFile(
                mode="w+", encoding="utf-8", dir=self.dir
            )
            await file.write(TEXT_HEAD)
            self.position = await file.tell()
            await file.write(TEXT_TAIL)
        else:
            self.binary = binary = await atf.SpooledTemporaryFile(dir=self.dir)
            await binary.write(HEAD)
            self.position = await binary.tell()
            await binary.write(TAIL)
        await self.file().seek(self.position)

    def file(self) -> SpooledFile[Any]:
        file = self.textual if self.text else self.binary
        assert file is not None
        return file

    async def run(self) -> None:
        await self.file().rollover()

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        file = self.file()
        rolled = file.rolled
        check(problems, not file.closed, "the file was closed")
        check(problems, rolled or outcome is not Outcome.COMPLETED, "returned unrolled")
        check_fds(problems, extra_fds, 1 if rolled else 0)
        check_listing(problems, self.dir, [])
        for attempt in ("after the call", "after another rollover"):
            position = await file.tell()
            check(
                problems, position == self.position, f"{attempt}: position {position}"
            )
            await file.seek(0)
            data = await file.read()
            expected = TEXT_HEAD + TEXT_TAIL if self.text else HEAD + TAIL
            check(problems, data == expected, f"{attempt}: the data changed")
            await file.seek(self.position)
            await file.rollover()
        await file.aclose()
        return problems

    async def teardown(self) -> None:
        file = self.textual if self.text else self.binary
        if file is not None and not file.closed:
            await file.aclose()
        await super().teardown()


class CrossingWrite(Rollover):
    """A write that takes a spooled file past ``max_size``: it rolls over first."""

    waits_for_workers = False  # the write itself, once on disk, is plain I/O

    async def setup(self) -> None:
        if self.text:
            self.textual = file = await atf.SpooledTemporaryFile(
                len(TEXT_HEAD.encode()) + 8, "w+", encoding="utf-8", dir=self.dir
            )
            await file.write(TEXT_HEAD)
            self.position = await file.tell()
        else:
            self.binary = binary = await atf.SpooledTemporaryFile(64, dir=self.dir)
            await binary.write(HEAD)
            self.position = await binary.tell()

    async def run(self) -> None:
        if self.textual is not None:
            await self.textual.write(TEXT_TAIL)
        elif self.binary is not None:
            await self.binary.write(TAIL)

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        file = self.file()
        rolled = file.rolled
        check(problems, not file.closed, "the file was closed")
        check_fds(problems, extra_fds, 1 if rolled else 0)
        check_listing(problems, self.dir, [])
        position = await file.tell()
        await file.seek(0)
        data = await file.read()
        before: tuple[int, object]
        after: tuple[int, object]
        if self.text:
            before = (self.position, TEXT_HEAD)
            after = (len((TEXT_HEAD + TEXT_TAIL).encode()), TEXT_HEAD + TEXT_TAIL)
        else:
            before, after = (self.position, HEAD), (len(HEAD + TAIL), HEAD + TAIL)
        state = (position, data)
        # All or nothing: the write happened wholly, or not at all.
        check(problems, state in (before, after), f"torn: {len(data)} at {position}")
        if outcome is Outcome.COMPLETED:
            check(problems, rolled and state == after, "returned, but did not write")
        if not self.text and not rolled:
            # A binary write never takes the in-memory buffer past max_size.
            check(problems, state == before, "wrote past max_size in memory")
        await file.aclose()
        return problems


class Persist(Trial):
    """``await f.persist(dest)``: the data gets its final name, or keeps its own."""

    def __init__(
        self, directory: Path, spec: FileSpec, *, rolled: bool = False
    ) -> None:
        super().__init__(directory)
        self.spec = spec
        self.rolled = rolled
        self.file: AsyncFile[bytes] | None = None
        self.name = ""
        self.position = 100

    async def setup(self) -> None:
        self.file = file = await self.spec.opening(self.dir)
        await file.write(DATA)
        if self.rolled:
            spooled: Any = file
            await spooled.rollover()
        await file.seek(self.position)
        if self.spec.named:
            self.name = base(file.name)

    async def run(self) -> None:
        assert self.file is not None
        await self.file.persist(self.dir / KEPT)

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        problems: list[str] = []
        file = self.file
        assert file is not None
        check(problems, not file.closed, "the file was closed")
        rolled: bool = getattr(file, "rolled", True)
        check_fds(problems, extra_fds, self.spec.on_disk(rolled=rolled))
        persisted = (self.dir / KEPT).exists()
        if persisted:
            check_listing(problems, self.dir, [KEPT])
            kept = read_by_name(self.dir / KEPT)
            check(problems, kept == DATA, f"dest holds {len(kept)} bytes")
        else:
            check(problems, outcome is not Outcome.COMPLETED, "returned, dest missing")
            check_listing(problems, self.dir, [self.name] if self.spec.named else [])
        position = await file.tell()
        check(problems, position == self.position, f"position moved to {position}")
        await file.seek(0)
        check(problems, await file.read() == DATA, "the file's data changed")
        if self.spec.named and not persisted:
            await file.flush()
            kept = read_by_name(self.dir / self.name)
            check(problems, kept == DATA, f"the temp file holds {len(kept)} bytes")
        await file.aclose()
        if persisted:
            check_listing(problems, self.dir, [KEPT])  # closing deletes nothing
        else:
            kept_names = [self.name] if self.spec.kept_after_aclose() else []
            check_listing(problems, self.dir, kept_names)
        return problems

    async def teardown(self) -> None:
        if self.file is not None and not self.file.closed:
            await self.file.aclose()
        await super().teardown()


TRIALS: dict[str, Callable[[Path], Trial]] = {}


def trial(name: str, make: Callable[[Path], Trial]) -> None:
    TRIALS[name] = make


for _spec in FILE_SPECS:
    trial(f"create-{_spec.label()}", partial(CreateFile, spec=_spec))
trial("create-named-text", CreateTextFile)
trial("mkstemp", lambda d: MakeTemp(d, directory_too=False))
trial("mkdtemp", lambda d: MakeTemp(d, directory_too=True))
trial("create-directory", CreateDirectory)
for _spec in FILE_SPECS:
    trial(f"aclose-{_spec.label()}", partial(CloseFile, spec=_spec))
trial("aclose-spooled-rolled", lambda d: CloseFile(d, FileSpec("spooled"), rolled=True))
for _spec in [*FILE_SPECS, FileSpec("spooled", max_size=64)]:
    for _raises in (False, True):
        trial(
            f"block-{_spec.label()}{'-body-raises' if _raises else ''}",
            partial(FileBlock, spec=_spec, body_raises=_raises),
        )
for _delete in (True, False):
    for _raises in (False, True):
        trial(
            f"block-directory[delete={_delete}]{'-body-raises' if _raises else ''}",
            partial(DirectoryBlock, delete=_delete, body_raises=_raises),
        )
trial("cleanup-directory", CleanUpDirectory)
trial("rollover-binary", lambda d: Rollover(d, text=False))
trial("rollover-text", lambda d: Rollover(d, text=True))
trial("crossing-write-binary", lambda d: CrossingWrite(d, text=False))
trial("crossing-write-text", lambda d: CrossingWrite(d, text=True))
for _spec in [FileSpec("named"), FileSpec("named", delete=False)]:
    trial(f"persist-{_spec.label()}", partial(Persist, spec=_spec))
trial("persist-temporary", lambda d: Persist(d, FileSpec("temporary")))
trial("persist-spooled", lambda d: Persist(d, FileSpec("spooled")))
trial("persist-spooled-rolled", lambda d: Persist(d, FileSpec("spooled"), rolled=True))


# --------------------------------------------------------------------------- #
# The sweep
# --------------------------------------------------------------------------- #

#: One sweep per (trial, backend), shared by the two tests that read it.
_REPORTS: dict[tuple[str, str], SweepReport] = {}


async def swept(
    name: str,
    anyio_backend: tuple[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    directory: Path,
) -> SweepReport:
    key = (name, repr(anyio_backend))
    if key not in _REPORTS:
        sweeper = Sweeper(Probe(monkeypatch), anyio_backend[0])
        report = await sweeper.sweep(name, lambda: TRIALS[name](directory))
        _REPORTS[key] = report
        monkeypatch.undo()
        print(f"[{anyio_backend[0]}{anyio_backend[1] or ''}] {report.summary()}")
    report = _REPORTS[key]
    return report


def failure_message(report: SweepReport, failures: list[str]) -> str:
    shown = "\n  ".join(failures[:40])
    more = f"\n  ... and {len(failures) - 40} more" if len(failures) > 40 else ""
    return f"{report.summary()}; {len(failures)} failures:\n  {shown}{more}"


@pytest.mark.parametrize("name", TRIALS)
async def test_cancelled_operation_leaves_a_consistent_state(
    name: str,
    anyio_backend: tuple[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    no_leaks: Path,
) -> None:
    """At every await point, every style: nothing leaked, nothing lost."""
    report = await swept(name, anyio_backend, monkeypatch, no_leaks)
    assert not report.failures, failure_message(report, report.failures)


@pytest.mark.parametrize("name", TRIALS)
async def test_cancelled_operation_raises_the_cancellation_itself(
    name: str,
    anyio_backend: tuple[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    no_leaks: Path,
) -> None:
    """Cancelled before its last await point, the operation raises; it does not
    return and leave the cancellation to the caller's next checkpoint."""
    report = await swept(name, anyio_backend, monkeypatch, no_leaks)
    assert not report.late, failure_message(report, report.late)


# --------------------------------------------------------------------------- #
# Delivery, spelled out
# --------------------------------------------------------------------------- #


async def test_cancelled_creation_raises_and_skips_the_rest_of_the_scope(
    no_leaks: Path,
) -> None:
    reached = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await atf.NamedTemporaryFile(dir=no_leaks)
        reached = True
    assert scope.cancelled_caught
    assert not reached


async def test_cancelled_aclose_closes_then_raises(no_leaks: Path) -> None:
    file = await atf.NamedTemporaryFile(dir=no_leaks)
    reached = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await file.aclose()
        reached = True
    assert file.closed
    assert scope.cancelled_caught
    assert not reached


async def test_cancelled_cleanup_removes_then_raises(no_leaks: Path) -> None:
    directory = await atf.TemporaryDirectory(dir=no_leaks)
    reached = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await directory.cleanup()
        reached = True
    assert listing(no_leaks) == []
    assert scope.cancelled_caught
    assert not reached


async def test_block_exit_cancelled_from_its_worker_removes_the_file(
    monkeypatch: pytest.MonkeyPatch, no_leaks: Path
) -> None:
    opening = atf.NamedTemporaryFile(dir=no_leaks)
    file = await opening.__aenter__()
    real_run_sync = anyio.to_thread.run_sync
    scope = anyio.CancelScope()

    async def cancelling(func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        def cancel_then_work(*args: Any) -> Any:
            anyio.from_thread.run_sync(scope.cancel)
            return func(*args)

        return await real_run_sync(cancel_then_work, *args, **kw)

    monkeypatch.setattr(anyio.to_thread, "run_sync", cancelling)
    reached = False
    with scope:
        await opening.__aexit__(None, None, None)
        await anyio.lowlevel.checkpoint()
        reached = True
    assert file.closed
    assert listing(no_leaks) == []
    assert scope.cancelled_caught
    assert not reached


# --------------------------------------------------------------------------- #
# asyncio.wait_for: random tiny timeouts, many times over
# --------------------------------------------------------------------------- #

ITERATIONS = 200


def asyncio_only(anyio_backend: tuple[str, dict[str, Any]]) -> None:
    if anyio_backend[0] != "asyncio":
        pytest.skip("asyncio.wait_for is asyncio's own")


def tiny_timeouts(seed: int, *, zero: bool) -> list[float]:
    """Log-uniform over 1 µs to 5 ms (an operation takes a fraction of a
    millisecond); with ``zero``, some 0 timeouts too.

    ``wait_for(coro, 0)`` cancels the coroutine before its first step: none of
    its code runs, so it cannot start a cleanup, let alone finish one.  Only
    creation (which then must simply not happen) is given those.
    """
    rng = random.Random(seed)
    return [
        0.0 if zero and rng.random() < 0.1 else 10 ** rng.uniform(-6, -2.3)
        for _ in range(ITERATIONS)
    ]


Maker = Literal[
    "named", "temporary", "spooled-rolling", "mkstemp", "mkdtemp", "directory"
]


async def make_with_timeout(maker: Maker, directory: Path, limit: float) -> bool:
    """Create under ``wait_for``; clean up (untimed) if it came through."""
    try:
        if maker in ("named", "temporary"):
            opening = (
                atf.NamedTemporaryFile(dir=directory)
                if maker == "named"
                else atf.TemporaryFile(dir=directory)
            )
            await asyncio.wait_for(opening.__aenter__(), limit)
            await opening.__aexit__(None, None, None)
        elif maker == "spooled-rolling":
            spooled = await atf.SpooledTemporaryFile(8, dir=directory)
            try:
                await asyncio.wait_for(spooled.write(DATA), limit)
            finally:
                await spooled.aclose()
        elif maker == "mkstemp":
            fd, path = await asyncio.wait_for(atf.mkstemp(dir=str(directory)), limit)
            os.close(fd)
            os.unlink(path)
        elif maker == "mkdtemp":
            os.rmdir(await asyncio.wait_for(atf.mkdtemp(dir=str(directory)), limit))
        else:
            made = atf.TemporaryDirectory(dir=str(directory))
            await asyncio.wait_for(made.__aenter__(), limit)
            await made.__aexit__(None, None, None)
    except asyncio.TimeoutError:
        return True
    return False


@pytest.mark.parametrize(
    "maker",
    ["named", "temporary", "spooled-rolling", "mkstemp", "mkdtemp", "directory"],
)
async def test_wait_for_timeouts_on_creation_leak_nothing(
    anyio_backend: tuple[str, dict[str, Any]], maker: Maker, no_leaks: Path
) -> None:
    asyncio_only(anyio_backend)
    before = open_descriptors()
    timed_out = 0
    for timeout in tiny_timeouts(seed=len(maker), zero=True):
        timed_out += await make_with_timeout(maker, no_leaks, timeout)
        assert listing(no_leaks) == [], f"left behind (timeout {timeout})"
        assert open_descriptors() == before, f"descriptor leaked (timeout {timeout})"
    assert timed_out, "no call timed out: the test exercised nothing"


Ending = Literal["aclose", "exit", "exit-keep-until-exit", "cleanup"]


async def close_with_timeout(closer: Ending, directory: Path, limit: float) -> bool:
    """Close under ``wait_for``; whatever the timing, the cleanup must be done."""
    try:
        if closer == "cleanup":
            made = await atf.TemporaryDirectory(dir=str(directory))
            await asyncio.wait_for(made.cleanup(), limit)
        elif closer == "aclose":
            file = await atf.NamedTemporaryFile(dir=directory)
            await file.write(DATA)
            try:
                await asyncio.wait_for(file.aclose(), limit)
            finally:
                assert file.closed
        else:
            opening = atf.NamedTemporaryFile(
                dir=directory, delete_on_close=closer == "exit"
            )
            file = await opening.__aenter__()
            await file.write(DATA)
            if closer == "exit-keep-until-exit":
                await file.aclose()
            try:
                await asyncio.wait_for(opening.__aexit__(None, None, None), limit)
            finally:
                assert file.closed
    except asyncio.TimeoutError:
        return True
    return False


@pytest.mark.parametrize(
    "closer", ["aclose", "exit", "exit-keep-until-exit", "cleanup"]
)
async def test_wait_for_timeouts_on_cleanup_finish_the_cleanup(
    anyio_backend: tuple[str, dict[str, Any]], closer: Ending, no_leaks: Path
) -> None:
    asyncio_only(anyio_backend)
    before = open_descriptors()
    timed_out = 0
    for timeout in tiny_timeouts(seed=len(closer), zero=False):
        timed_out += await close_with_timeout(closer, no_leaks, timeout)
        assert listing(no_leaks) == [], f"left behind (timeout {timeout})"
        assert open_descriptors() == before, f"descriptor leaked (timeout {timeout})"
    assert timed_out, "no call timed out: the test exercised nothing"
