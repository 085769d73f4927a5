"""Faults at the system-call layer: errors surface, nothing is lost, nothing leaks.

A matrix of (operation, system call, errno, expectation), each fault injected by
:mod:`syscall_faults` into the very ``os`` function the package calls (and, for
writes, into the ``write(2)`` under the file object), only for paths under the
test's ``tmp_path``:

* ``ENOSPC`` (a short write, then the error, as a filling disk does) and ``EIO``
  on write, surfacing at the write that reaches the disk, at ``flush()`` or at
  ``aclose()``, as with the standard library's buffered file; and on ``fsync``
  (``persist(..., fsync=True)``, ``atomic_write``).
* ``EMFILE`` and ``EACCES`` on open (and ``mkdir`` for directories, ``dup`` for
  ``atomic_write``), for every constructor and the spooled rollover.
* ``EXDEV`` and ``EEXIST`` on ``link``/``rename``: ``persist`` (renamed named
  files, ``linkat`` of ``O_TMPFILE`` files, the copying fallback, in-memory
  spooled files) with ``overwrite`` true and false, and ``atomic_write``.
* ``EBUSY`` and ``EPERM`` on ``unlink``/``rmdir``: ``NamedTemporaryFile``'s
  delete, ``TemporaryDirectory`` cleanup with and without
  ``ignore_cleanup_errors``.

Each case checks that (1) the exception is the standard library's type for the
errno (``OSError(code, ...)`` maps it: ``EEXIST`` is ``FileExistsError``,
``EACCES``/``EPERM`` ``PermissionError``, the others plain ``OSError``), with
that errno -- and the ``test_stdlib_*`` tests run the standard library's
``tempfile`` under the same fault, where it has the operation, to show that the
expectation is its own; (2) the data written before the fault is intact, and a
destination is untouched or complete, never partial or clobbered; (3) no
descriptor leaks and the directories hold exactly what they should; (4) the
object is still usable, or cleanly closed, and a retry once the fault is gone
succeeds.  Every case also checks that its fault was injected, so that a
refactoring that bypasses the patched call fails here rather than passing
vacuously.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import pytest
from support import open_descriptors
from syscall_faults import SyscallFaults

import anyio_tempfile as atf
import anyio_tempfile._create
from anyio_tempfile._file import AsyncSpooledTemporaryFile, AsyncTemporaryFile

pytestmark = pytest.mark.anyio

# These tests look at the file system directly, and synchronously on purpose:
# what they check is its state at that instant.
# ruff: noqa: ASYNC240

DEST = "dest.bin"
OLD = b"the destination's old content, never clobbered\n" * 4
# Parts of at most 8 KiB go through the in-loop write buffer.
PARTS = (bytes(range(256)) * 16, bytes(range(255, -1, -1)) * 16, b"tail" * 100)
DATA = b"".join(PARTS)
POSITION = 1234
REAL_UNLINK = os.unlink  # before any patch


def name_of(code: int) -> str:
    return errno.errorcode[code]


def stdlib_type(code: int) -> type[OSError]:
    """The exception class that the standard library raises for ``code``."""
    return type(OSError(code, os.strerror(code)))


def assert_fault(error: BaseException, code: int) -> None:
    """``error`` is exactly what the standard library raises for ``code``."""
    assert type(error) is stdlib_type(code), (
        f"{type(error).__name__} raised for {name_of(code)}, "
        f"not the standard library's {stdlib_type(code).__name__}: {error!r}"
    )
    assert isinstance(error, OSError)
    assert error.errno == code


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def tree(directory: Path) -> list[str]:
    """Every path under ``directory``, relative to it."""
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


def is_directory(paths: tuple[str, ...]) -> bool:
    return os.path.isdir(paths[0])


def is_not_directory(paths: tuple[str, ...]) -> bool:
    return not os.path.isdir(paths[0])


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SyscallFaults:
    """Fault injection for everything under ``tmp_path``, on a fresh probe cache."""
    monkeypatch.setattr(anyio_tempfile._create, "_o_tmpfile_refused_in", set())
    return SyscallFaults(tmp_path).install(monkeypatch)


@pytest.fixture
def dest_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "dest"
    directory.mkdir()
    return directory


@pytest.fixture(autouse=True)
def no_descriptor_leaks() -> Iterator[None]:
    before = open_descriptors()
    yield
    assert open_descriptors() - before == set(), "a descriptor was left open"


FileT = TypeVar("FileT", bound=AsyncTemporaryFile[Any])


@contextlib.asynccontextmanager
async def closed_at_end(f: FileT, faults: SyscallFaults) -> AsyncIterator[FileT]:
    """Close ``f`` however the test ends, the fault gone (a no-op if closed)."""
    try:
        yield f
    finally:
        faults.clear()
        await f.aclose()


def use_named_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """As where the file system refuses ``O_TMPFILE``: named files instead."""
    monkeypatch.setattr(anyio_tempfile._create, "_o_tmpfile_available", False)


def require_o_tmpfile(directory: Path) -> None:
    flag = getattr(os, "O_TMPFILE", 0)
    try:
        fd = os.open(directory, flag | os.O_RDWR, 0o600) if flag else -1
    except OSError:
        fd = -1
    if fd < 0:
        pytest.skip("O_TMPFILE is not available here")
    os.close(fd)


# --------------------------------------------------------------------------- #
# Open: EMFILE and EACCES for every constructor
# --------------------------------------------------------------------------- #

Constructor = Literal[
    "TemporaryFile",
    "NamedTemporaryFile",
    "mkstemp",
    "TemporaryDirectory",
    "mkdtemp",
    "atomic_write",
    "atomic_write-named",
]


@dataclass(frozen=True)
class OpenCase:
    """Creating with ``constructor`` while ``syscall`` fails with ``code``.

    ``times=None``: every call fails, and so does the creation.  ``times=1``:
    only the first does, and the creation recovers (``fails=False``).
    """

    constructor: Constructor
    syscall: str
    code: int
    times: int | None = None
    fails: bool = True

    @property
    def id(self) -> str:
        once = "-first-only" if self.times == 1 else ""
        return f"{self.constructor}-{self.syscall}-{name_of(self.code)}{once}"


# What each constructor calls to create: open(2), or mkdir(2) for a directory.
CREATING_CALL: list[tuple[Constructor, str]] = [
    ("TemporaryFile", "open"),
    ("NamedTemporaryFile", "open"),
    ("mkstemp", "open"),
    ("atomic_write", "open"),
    ("atomic_write-named", "open"),
    ("TemporaryDirectory", "mkdir"),
    ("mkdtemp", "mkdir"),
]

OPEN_CASES = [
    *(
        OpenCase(constructor, syscall, code)
        for constructor, syscall in CREATING_CALL
        for code in (errno.EMFILE, errno.EACCES)
    ),
    # The O_TMPFILE open fails, the named fallback works: created all the same.
    *(
        OpenCase(constructor, "open", code, times=1, fails=False)
        for constructor in ("TemporaryFile", "atomic_write")
        for code in (errno.EMFILE, errno.EACCES)
    ),
    # atomic_write keeps a duplicate descriptor of its file.
    OpenCase("atomic_write", "dup", errno.EMFILE),
    OpenCase("atomic_write-named", "dup", errno.EMFILE),
]


async def create_and_use(constructor: Constructor, directory: Path, dest: Path) -> None:
    """Create with ``constructor``, use it, and clean it up."""
    if constructor == "TemporaryFile":
        async with atf.TemporaryFile(dir=directory) as f:
            await f.write(DATA)
            await f.seek(0)
            assert await f.read() == DATA
    elif constructor == "NamedTemporaryFile":
        async with atf.NamedTemporaryFile(dir=directory) as f:
            await f.write(DATA)
    elif constructor == "mkstemp":
        fd, path = await atf.mkstemp(dir=directory)
        os.close(fd)
        os.unlink(path)
    elif constructor == "TemporaryDirectory":
        async with atf.TemporaryDirectory(dir=directory):
            pass
    elif constructor == "mkdtemp":
        os.rmdir(await atf.mkdtemp(dir=directory))
    else:
        async with atf.atomic_write(dest) as f:
            await f.write(DATA)


@pytest.mark.parametrize("case", OPEN_CASES, ids=lambda case: case.id)
async def test_creation_fault(
    case: OpenCase,
    faults: SyscallFaults,
    scratch_dir: Path,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if case.constructor == "atomic_write-named":
        use_named_fallback(monkeypatch)
    dest = dest_dir / DEST
    dest.write_bytes(OLD)
    atomic = case.constructor.startswith("atomic_write")
    rule = faults.fail(case.syscall, case.code, times=case.times)
    if case.fails:
        with pytest.raises(stdlib_type(case.code)) as caught:
            await create_and_use(case.constructor, scratch_dir, dest)
        assert_fault(caught.value, case.code)
        if case.syscall == "dup":
            assert caught.value.filename is None
        else:
            # Named after the entry it tried to create, as mkstemp's and
            # mkdtemp's errors are.
            assert os.path.dirname(caught.value.filename) == str(
                dest_dir if atomic else scratch_dir
            )
    else:
        await create_and_use(case.constructor, scratch_dir, dest)
    assert rule.hits >= 1
    if case.times is not None:
        assert rule.hits == case.times
    faults.clear()
    assert listing(scratch_dir) == []
    assert listing(dest_dir) == [DEST]
    assert dest.read_bytes() == (DATA if atomic and not case.fails else OLD)


def stdlib_create(constructor: Constructor, directory: Path) -> None:
    """The standard library's counterpart of :func:`create_and_use`."""
    if constructor == "TemporaryFile":
        with tempfile.TemporaryFile(dir=directory) as f:
            f.write(DATA)
    elif constructor == "NamedTemporaryFile":
        with tempfile.NamedTemporaryFile(dir=directory) as f:
            f.write(DATA)
    elif constructor == "mkstemp":
        fd, path = tempfile.mkstemp(dir=directory)
        os.close(fd)
        os.unlink(path)
    elif constructor == "TemporaryDirectory":
        with tempfile.TemporaryDirectory(dir=directory):
            pass
    else:
        assert constructor == "mkdtemp"
        os.rmdir(tempfile.mkdtemp(dir=directory))


@pytest.mark.parametrize(
    "case",
    [case for case in OPEN_CASES if not case.constructor.startswith("atomic")],
    ids=lambda case: case.id,
)
def test_stdlib_creation_fault(
    case: OpenCase, faults: SyscallFaults, scratch_dir: Path
) -> None:
    rule = faults.fail(case.syscall, case.code, times=case.times)
    if case.fails:
        with pytest.raises(stdlib_type(case.code)) as caught:
            stdlib_create(case.constructor, scratch_dir)
        assert_fault(caught.value, case.code)
        assert os.path.dirname(caught.value.filename) == str(scratch_dir)
    else:
        stdlib_create(case.constructor, scratch_dir)
    assert rule.hits >= 1
    faults.clear()
    assert listing(scratch_dir) == []


# --------------------------------------------------------------------------- #
# The spooled rollover: its open and its copy fail, the data stays in memory
# --------------------------------------------------------------------------- #

HEAD = b"in memory, before the rollover" * 2  # 60 bytes
NEXT = b"the write that crosses max_size" * 2  # 62 bytes
SPOOL_POSITION = 50  # + len(NEXT) passes max_size=100


@dataclass(frozen=True)
class RolloverCase:
    trigger: Literal["write", "rollover"]
    syscall: str
    code: int

    @property
    def id(self) -> str:
        return f"{self.trigger}-{self.syscall}-{name_of(self.code)}"


ROLLOVER_CASES = [
    RolloverCase(trigger, syscall, code)
    for trigger in ("write", "rollover")
    for syscall, codes in (
        ("open", (errno.EMFILE, errno.EACCES)),
        ("write", (errno.ENOSPC, errno.EIO)),
    )
    for code in codes
]


async def roll_over(f: AsyncSpooledTemporaryFile[bytes], trigger: str) -> None:
    if trigger == "write":
        assert await f.write(NEXT) == len(NEXT)
    else:
        await f.rollover()


@pytest.mark.parametrize("case", ROLLOVER_CASES, ids=lambda case: case.id)
async def test_rollover_fault_keeps_the_data_in_memory(
    case: RolloverCase, faults: SyscallFaults, scratch_dir: Path
) -> None:
    max_size = 100 if case.trigger == "write" else 0
    spooled = await atf.SpooledTemporaryFile(max_size, dir=scratch_dir)
    async with closed_at_end(spooled, faults) as f:
        await f.write(HEAD)
        await f.seek(SPOOL_POSITION)
        # A write fault lets part of the copy through first.
        space = 20 if case.syscall == "write" else None
        rule = faults.fail(case.syscall, case.code, space=space)
        with pytest.raises(stdlib_type(case.code)) as caught:
            await roll_over(f, case.trigger)
        assert_fault(caught.value, case.code)
        assert rule.hits >= 1
        # All or nothing: still in memory, the failed write not applied.
        assert not f.rolled
        assert f.name is None
        assert await f.tell() == SPOOL_POSITION
        await f.seek(0)
        assert await f.read() == HEAD
        await f.seek(SPOOL_POSITION)
        assert listing(scratch_dir) == []
        # The disk is back: the same call succeeds.
        faults.clear()
        await roll_over(f, case.trigger)
        assert f.rolled
        expected = HEAD
        if case.trigger == "write":
            expected = HEAD[:SPOOL_POSITION] + NEXT
        assert await f.tell() == (
            len(expected) if case.trigger == "write" else SPOOL_POSITION
        )
        await f.seek(0)
        assert await f.read() == expected
    assert listing(scratch_dir) == []


@pytest.mark.parametrize(
    "case",
    [case for case in ROLLOVER_CASES if case.syscall == "open"],
    ids=lambda case: case.id,
)
def test_stdlib_rollover_fault(
    case: RolloverCase, faults: SyscallFaults, scratch_dir: Path
) -> None:
    # Only the open: the standard library's rollover loses the data when its
    # copy fails (it has already swapped in the new file), where ours keeps it.
    max_size = 100 if case.trigger == "write" else 0
    with tempfile.SpooledTemporaryFile(max_size, dir=str(scratch_dir)) as f:
        f.write(HEAD)
        f.seek(SPOOL_POSITION)
        rule = faults.fail(case.syscall, case.code)
        roll_over = partial(f.write, NEXT) if case.trigger == "write" else f.rollover
        with pytest.raises(stdlib_type(case.code)) as caught:
            roll_over()
        assert_fault(caught.value, case.code)
        assert rule.hits >= 1
        assert vars(f)["_rolled"] is False
        faults.clear()


# --------------------------------------------------------------------------- #
# Write, flush, close: ENOSPC and EIO
# --------------------------------------------------------------------------- #

WriteKind = Literal[
    "TemporaryFile",
    "TemporaryFile-text",
    "TemporaryFile-unbuffered",
    "NamedTemporaryFile",
    "SpooledTemporaryFile-rolled",
]
Where = Literal["write", "medium-write", "large-write", "flush", "close"]
WRITE_KINDS: list[WriteKind] = [
    "TemporaryFile",
    "TemporaryFile-text",
    "TemporaryFile-unbuffered",
    "NamedTemporaryFile",
    "SpooledTemporaryFile-rolled",
]

# "write": ten 8 KiB writes, the disk full after 50 000 bytes, so that the
# fault comes while writing, past the in-loop buffer.  "medium-write": ten
# 64 KiB writes, full after 300 000 bytes, and "large-write": ten 300 000-byte
# writes, full after 1 000 000 bytes (ours queues bytes writes past 8 KiB, so
# the fault may come at a later write or the flush).  "flush" and "close":
# three small writes that every buffer holds; the disk takes half of them.
SPACE: dict[Where, int] = {
    "write": 50_000,
    "medium-write": 300_000,
    "large-write": 1_000_000,
    "flush": 1_500,
    "close": 1_500,
}
CHUNKS: dict[Where, tuple[int, int]] = {
    "write": (10, 8192),
    "medium-write": (10, 64 * 1024),
    "large-write": (10, 300_000),
    "flush": (3, 1000),
    "close": (3, 1000),
}


def chunks(where: Where, text: bool) -> list[Any]:
    """Distinct chunks, so that a lost, repeated or moved chunk shows."""
    count, size = CHUNKS[where]
    letters = [chr(ord("A") + index) * size for index in range(count)]
    return letters if text else [letter.encode() for letter in letters]


@dataclass(frozen=True)
class WriteCase:
    kind: WriteKind
    where: Where
    code: int

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.where}-{name_of(self.code)}"

    @property
    def text(self) -> bool:
        return self.kind == "TemporaryFile-text"

    @property
    def space(self) -> int:
        return SPACE[self.where]


# Regression (found by this suite, fixed): after a write error, the in-loop buffer is
# written again whole, though the file object had already written part of it: the bytes
# on disk before the error are repeated, and everything after them is misplaced
# (_buffer.Buffers.apply and TextBuffers.apply keep all of `pending` when file.write
# raises after a short write)


WRITE_CASES = [
    WriteCase(kind, where, code)
    for kind in WRITE_KINDS
    for where in ("write", "medium-write", "large-write", "flush", "close")
    for code in (errno.ENOSPC, errno.EIO)
    # Unbuffered, every write reaches the disk at once: nothing is left for
    # flush or close to find.
    if kind != "TemporaryFile-unbuffered"
    or where in ("write", "medium-write", "large-write")
]


async def open_for_writes(kind: WriteKind, directory: Path) -> AsyncTemporaryFile[Any]:
    if kind == "TemporaryFile":
        return await atf.TemporaryFile(dir=directory)
    if kind == "TemporaryFile-text":
        return await atf.TemporaryFile("w+", encoding="utf-8", dir=directory)
    if kind == "TemporaryFile-unbuffered":
        return await atf.TemporaryFile(buffering=0, dir=directory)
    if kind == "NamedTemporaryFile":
        return await atf.NamedTemporaryFile(dir=directory)
    spooled = await atf.SpooledTemporaryFile(dir=directory)
    await spooled.rollover()
    assert spooled.rolled
    return spooled


def stdlib_open_for_writes(kind: WriteKind, directory: Path) -> IO[Any]:
    if kind == "TemporaryFile":
        return tempfile.TemporaryFile(dir=directory)
    if kind == "TemporaryFile-text":
        return tempfile.TemporaryFile("w+", encoding="utf-8", dir=directory)
    if kind == "TemporaryFile-unbuffered":
        return tempfile.TemporaryFile(buffering=0, dir=directory)
    if kind == "NamedTemporaryFile":
        return tempfile.NamedTemporaryFile(dir=directory)
    spooled = tempfile.SpooledTemporaryFile(dir=str(directory))  # noqa: SIM115
    spooled.rollover()
    return spooled


def assert_intact(content: Any, acknowledged: Any, failed: Any) -> None:
    """What the standard library's buffered file keeps when a write fails.

    Every byte a write acknowledged is in the file, at its place (a buffered
    file keeps what it could not write, and writes it at the next flush); after
    them at most a beginning of the write that failed (the part the disk took
    before the error); nothing else.
    """
    kept = len(acknowledged)
    assert content[:kept] == acknowledged, (
        f"the file holds {len(content)} bytes, {kept} were acknowledged before "
        "the fault: they are not all there, in order"
    )
    rest = content[kept:]
    assert failed[: len(rest)] == rest, (
        f"{len(rest)} bytes after the acknowledged ones are not the beginning "
        "of the write that failed"
    )


@pytest.mark.parametrize(
    "case",
    WRITE_CASES,
    ids=lambda case: case.id,
)
async def test_write_fault(
    case: WriteCase, faults: SyscallFaults, scratch_dir: Path
) -> None:
    opened = await open_for_writes(case.kind, scratch_dir)
    async with closed_at_end(opened, faults) as f:
        name = f.name
        rule = faults.fail("write", case.code, space=case.space)
        pieces = chunks(case.where, case.text)
        acknowledged = pieces[0][:0]
        failed = acknowledged
        error: OSError | None = None
        for piece in pieces:
            try:
                written = await f.write(piece)
            except OSError as exc:
                error, failed = exc, piece
                break
            acknowledged += piece[:written]
        if case.where == "close":
            assert error is None, "a small write reached the disk before close"
            with pytest.raises(stdlib_type(case.code)) as caught:
                await f.aclose()
            assert_fault(caught.value, case.code)
            assert rule.hits >= 1
            # Closed all the same, descriptor and all; a named file deleted.
            assert f.closed
            assert listing(scratch_dir) == []
            return
        if error is None:
            try:
                await f.flush()
            except OSError as exc:
                error = exc
        elif case.where == "flush":
            pytest.fail(f"a small write reached the disk before flush: {error!r}")
        assert error is not None, "the fault was never reported"
        assert_fault(error, case.code)
        assert rule.hits >= 1
        # The disk is back: the file is usable, and holds what it should.
        faults.clear()
        await f.flush()
        await f.seek(0)
        content = await f.read()
        assert_intact(content, acknowledged, failed)
        more = pieces[0][:5]
        await f.write(more)
        await f.seek(0)
        assert await f.read() == content + more
        if case.kind == "NamedTemporaryFile":
            assert listing(scratch_dir) == [os.path.basename(name)]
    assert listing(scratch_dir) == []


@pytest.mark.parametrize("case", WRITE_CASES, ids=lambda case: case.id)
def test_stdlib_write_fault(
    case: WriteCase, faults: SyscallFaults, scratch_dir: Path
) -> None:
    """The same writes to the standard library's file, under the same fault."""
    f = stdlib_open_for_writes(case.kind, scratch_dir)
    try:
        rule = faults.fail("write", case.code, space=case.space)
        pieces = chunks(case.where, case.text)
        acknowledged = pieces[0][:0]
        failed = acknowledged
        error: OSError | None = None
        for piece in pieces:
            try:
                written = f.write(piece)
            except OSError as exc:
                error, failed = exc, piece
                break
            acknowledged += piece[:written]
        if case.where == "close":
            assert error is None
            with pytest.raises(stdlib_type(case.code)) as caught:
                f.close()
            assert_fault(caught.value, case.code)
            assert f.closed
            assert listing(scratch_dir) == []
            return
        if error is None:
            try:
                f.flush()
            except OSError as exc:
                error = exc
        else:
            assert case.where in ("write", "medium-write", "large-write")
        assert error is not None
        assert_fault(error, case.code)
        assert rule.hits >= 1
        faults.clear()
        f.flush()
        f.seek(0)
        assert_intact(f.read(), acknowledged, failed)
    finally:
        faults.clear()
        f.close()
    assert listing(scratch_dir) == []


Storage = Literal["o_tmpfile", "named"]
STORAGES: list[Storage] = ["o_tmpfile", "named"]


def use_storage(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, directory: Path
) -> None:
    if storage == "named":
        use_named_fallback(monkeypatch)
    else:
        require_o_tmpfile(directory)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=name_of)
@pytest.mark.parametrize("where", ["write", "medium-write", "large-write", "close"])
@pytest.mark.parametrize("storage", STORAGES)
async def test_atomic_write_write_fault_leaves_the_destination_untouched(
    storage: Storage,
    where: Where,
    code: int,
    faults: SyscallFaults,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_storage(storage, monkeypatch, dest_dir)
    dest = dest_dir / DEST
    dest.write_bytes(OLD)
    rule = faults.fail("write", code, space=SPACE[where])

    async def write_all() -> None:
        async with atf.atomic_write(dest) as f:
            for piece in chunks(where, text=False):
                await f.write(piece)

    with pytest.raises(stdlib_type(code)) as caught:
        await write_all()
    assert_fault(caught.value, code)
    assert rule.hits >= 1
    faults.clear()
    assert dest.read_bytes() == OLD
    assert listing(dest_dir) == [DEST]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=name_of)
async def test_write_fault_behind_a_waiting_rewind_surfaces_at_the_next_call(
    code: int, faults: SyscallFaults, scratch_dir: Path
) -> None:
    """seek(0) waits for the next call: the pending write's error comes there.

    The rewind stays taken: once the disk is back, the retry writes the rest
    and reads from the start, as the caller was told.
    """
    pieces = [bytes([65 + index]) * 1000 for index in range(3)]
    async with closed_at_end(await atf.TemporaryFile(dir=scratch_dir), faults) as f:
        for piece in pieces:
            assert await f.write(piece) == 1000
        rule = faults.fail("write", code, space=1500)
        assert await f.seek(0) == 0
        with pytest.raises(stdlib_type(code)) as caught:
            await f.read(10)
        assert_fault(caught.value, code)
        assert rule.hits >= 1
        faults.clear()
        assert await f.read() == b"".join(pieces)
        assert await f.tell() == 3000


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=name_of)
async def test_spooled_crossing_write_fault_after_the_copy_keeps_the_rollover(
    code: int, faults: SyscallFaults, scratch_dir: Path
) -> None:
    """The copy and the write that made the file roll share one worker call.

    The disk takes the copy and fails the write: the rollover stands (as if
    they had been two calls), the write raises the stdlib's error, and the
    file holds the copy, then at most a beginning of the write.
    """
    before, crossing = b"m" * 100_000, b"c" * 65_536
    async with atf.SpooledTemporaryFile(100_000, dir=scratch_dir) as f:
        await f.write(before)
        assert not f.rolled
        rule = faults.fail("write", code, space=len(before) + 1000)
        with pytest.raises(stdlib_type(code)) as caught:
            await f.write(crossing)
        assert_fault(caught.value, code)
        assert rule.hits >= 1
        assert f.rolled
        faults.clear()
        await f.seek(0)
        content = await f.read()
        assert_intact(content, before, crossing)
        assert listing(scratch_dir) == []
    assert listing(scratch_dir) == []


# --------------------------------------------------------------------------- #
# persist and atomic_write: fsync, link and rename fail
# --------------------------------------------------------------------------- #

KeepKind = Literal[
    "NamedTemporaryFile",
    "TemporaryFile",
    "TemporaryFile-fallback",
    "SpooledTemporaryFile-memory",
]
KEEP_KINDS: list[KeepKind] = [
    "NamedTemporaryFile",
    "TemporaryFile",
    "TemporaryFile-fallback",
    "SpooledTemporaryFile-memory",
]


@contextlib.asynccontextmanager
async def keepable(
    kind: KeepKind,
    directory: Path,
    monkeypatch: pytest.MonkeyPatch,
    faults: SyscallFaults,
) -> AsyncIterator[AsyncTemporaryFile[bytes]]:
    """A file of ``kind`` holding DATA, positioned at POSITION; closed at the end."""
    f: AsyncTemporaryFile[bytes]
    if kind == "NamedTemporaryFile":
        f = await atf.NamedTemporaryFile(dir=directory)
    elif kind == "SpooledTemporaryFile-memory":
        f = await atf.SpooledTemporaryFile(1 << 20, dir=directory)
    else:
        if kind == "TemporaryFile-fallback":
            use_named_fallback(monkeypatch)
        else:
            require_o_tmpfile(directory)
        f = await atf.TemporaryFile(dir=directory)
    async with closed_at_end(f, faults):
        for part in PARTS:
            await f.write(part)
        await f.seek(POSITION)
        yield f


async def assert_still_intact(f: AsyncTemporaryFile[bytes]) -> None:
    """Open, holding DATA, at POSITION (and left there)."""
    assert not f.closed
    assert await f.tell() == POSITION
    await f.seek(0)
    assert await f.read() == DATA
    await f.seek(POSITION)


def scratch_entries(kind: KeepKind, name: object) -> list[str]:
    """What ``scratch_dir`` holds while the file of ``kind`` is open, unkept."""
    if kind == "NamedTemporaryFile":
        assert isinstance(name, str)
        return [os.path.basename(name)]
    return []


async def persist_again_and_close(
    f: AsyncTemporaryFile[bytes],
    dest: Path,
    scratch_dir: Path,
    *,
    overwrite: bool,
    fsync: bool,
) -> None:
    """The retry, once the fault is gone: it succeeds, and leaves only dest."""
    assert await f.persist(dest, overwrite=overwrite, fsync=fsync) == str(dest)
    assert dest.read_bytes() == DATA
    assert listing(dest.parent) == [DEST]
    assert await f.tell() == POSITION
    await f.aclose()
    assert dest.read_bytes() == DATA
    assert listing(dest.parent) == [DEST]
    assert listing(scratch_dir) == []


# Regression (found by this suite, fixed): persist(dest) of an unnamed file whose data
# already has the name dest (here: the first persist linked it, then failed on the
# directory fsync) links it under a fresh name and renames that over dest; rename(2) of
# two links to one inode does nothing, so the fresh name stays in dest's directory
# (_keep._link_descriptor)


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC], ids=name_of)
@pytest.mark.parametrize("which", ["data", "directory"])
@pytest.mark.parametrize("kind", KEEP_KINDS)
async def test_persist_fsync_fault(
    kind: KeepKind,
    which: str,
    code: int,
    faults: SyscallFaults,
    scratch_dir: Path,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = dest_dir / DEST
    dest.write_bytes(OLD)
    async with keepable(kind, scratch_dir, monkeypatch, faults) as f:
        entries = scratch_entries(kind, f.name)
        match = is_not_directory if which == "data" else is_directory
        rule = faults.fail("fsync", code, match=match)
        with pytest.raises(stdlib_type(code)) as caught:
            await f.persist(dest, fsync=True)
        assert_fault(caught.value, code)
        assert rule.hits == 1
        faults.clear()
        await assert_still_intact(f)
        if which == "data":
            # Before the name appears: nothing has changed.
            assert dest.read_bytes() == OLD
            assert listing(scratch_dir) == entries
        else:
            # The name is there, complete, only not known to be durable.
            assert dest.read_bytes() in (OLD, DATA)
        assert listing(dest_dir) == [DEST]
        await persist_again_and_close(f, dest, scratch_dir, overwrite=True, fsync=True)


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC], ids=name_of)
@pytest.mark.parametrize("which", ["data", "directory"])
@pytest.mark.parametrize("storage", STORAGES)
async def test_atomic_write_fsync_fault(
    storage: Storage,
    which: str,
    code: int,
    faults: SyscallFaults,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_storage(storage, monkeypatch, dest_dir)
    dest = dest_dir / DEST
    dest.write_bytes(OLD)
    match = is_not_directory if which == "data" else is_directory
    rule = faults.fail("fsync", code, match=match)
    with pytest.raises(stdlib_type(code)) as caught:
        async with atf.atomic_write(dest) as f:  # fsync=True is the default
            await f.write(DATA)
    assert_fault(caught.value, code)
    assert rule.hits == 1
    faults.clear()
    if which == "data":
        assert dest.read_bytes() == OLD
    else:
        assert dest.read_bytes() in (OLD, DATA)
    # Never a partial file, never the temporary file left behind.
    assert listing(dest_dir) == [DEST]


@dataclass(frozen=True)
class LinkCase:
    """``persist(dest, overwrite=...)`` while ``syscall`` fails with ``code``."""

    kind: KeepKind
    syscall: str
    overwrite: bool
    code: int
    times: int | None = None
    fails: bool = True

    @property
    def id(self) -> str:
        how = "overwrite" if self.overwrite else "exclusive"
        once = "-first-only" if self.times == 1 else ""
        return f"{self.kind}-{how}-{self.syscall}-{name_of(self.code)}{once}"


LINK_CASES = [
    *(
        # overwrite=True renames into place (an unnamed file: after linking it
        # under a fresh name); overwrite=False links, so that an existing dest
        # is refused by link(2) itself.
        LinkCase(kind, "rename" if overwrite else "link", overwrite, code)
        for kind in KEEP_KINDS
        for overwrite in (True, False)
        for code in (errno.EXDEV, errno.EEXIST)
    ),
    # The unnamed file's link under a fresh name, before the rename: EXDEV is
    # final, a name taken (EEXIST) is retried with another name.
    LinkCase("TemporaryFile", "link", True, errno.EXDEV),
    LinkCase("TemporaryFile", "link", True, errno.EEXIST, times=1, fails=False),
    LinkCase("SpooledTemporaryFile-memory", "link", True, errno.EXDEV),
]

# Regression (found by this suite, fixed): when persist(dest, overwrite=True) of an
# O_TMPFILE file fails at the rename, after linking it under a fresh name, it unlinks
# that name, and the file can never be linked again: linkat(2) refuses (ENOENT) an inode
# whose link count fell back to 0 once it has been linked, so the retry is a
# FileNotFoundError (_keep._link_descriptor; without a fault: persist onto an existing
# directory, then onto any path)


@pytest.mark.parametrize("case", LINK_CASES, ids=lambda case: case.id)
async def test_persist_link_fault(
    case: LinkCase,
    faults: SyscallFaults,
    scratch_dir: Path,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = dest_dir / DEST
    # overwrite=True must not clobber an existing dest when it fails; for
    # overwrite=False the injected EEXIST plays a dest that appears meanwhile.
    before = OLD if case.overwrite else None
    if before is not None:
        dest.write_bytes(before)
    async with keepable(case.kind, scratch_dir, monkeypatch, faults) as f:
        entries = scratch_entries(case.kind, f.name)
        rule = faults.fail(case.syscall, case.code, times=case.times)
        if not case.fails:
            await f.persist(dest, overwrite=case.overwrite)
            assert rule.hits == 1
            faults.clear()
            assert dest.read_bytes() == DATA
            assert listing(dest_dir) == [DEST]
            assert await f.tell() == POSITION
            await f.aclose()
            assert dest.read_bytes() == DATA
            assert listing(dest_dir) == [DEST]
            assert listing(scratch_dir) == []
            return
        with pytest.raises(stdlib_type(case.code)) as caught:
            await f.persist(dest, overwrite=case.overwrite)
        assert_fault(caught.value, case.code)
        assert rule.hits >= 1
        faults.clear()
        await assert_still_intact(f)
        if before is None:
            assert not os.path.lexists(dest)
            assert listing(dest_dir) == []
        else:
            assert dest.read_bytes() == before
            assert listing(dest_dir) == [DEST]
        assert listing(scratch_dir) == entries
        await persist_again_and_close(
            f, dest, scratch_dir, overwrite=case.overwrite, fsync=False
        )


@pytest.mark.parametrize("kind", ["TemporaryFile", "SpooledTemporaryFile-memory"])
async def test_persist_again_onto_the_same_dest_leaves_no_stray_name(
    kind: KeepKind,
    faults: SyscallFaults,
    scratch_dir: Path,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the retry after a failed directory fsync does, without a fault.
    dest = dest_dir / DEST
    async with keepable(kind, scratch_dir, monkeypatch, faults) as f:
        await f.persist(dest)
        assert listing(dest_dir) == [DEST]
        await persist_again_and_close(f, dest, scratch_dir, overwrite=True, fsync=False)


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EEXIST], ids=name_of)
@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "exclusive"])
@pytest.mark.parametrize("storage", STORAGES)
async def test_atomic_write_link_fault(
    storage: Storage,
    overwrite: bool,
    code: int,
    faults: SyscallFaults,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_storage(storage, monkeypatch, dest_dir)
    dest = dest_dir / DEST
    if overwrite:
        dest.write_bytes(OLD)
    syscall = "rename" if overwrite else "link"
    rule = faults.fail(syscall, code)
    with pytest.raises(stdlib_type(code)) as caught:
        async with atf.atomic_write(dest, overwrite=overwrite) as f:
            await f.write(DATA)
    assert_fault(caught.value, code)
    assert rule.hits >= 1
    if code == errno.EEXIST:
        # Said plainly: the data was thrown away, the destination left alone.
        assert caught.value.filename == str(dest)
        assert "discarded" in str(caught.value)
        assert isinstance(caught.value.__cause__, FileExistsError)
    faults.clear()
    if overwrite:
        assert dest.read_bytes() == OLD
        assert listing(dest_dir) == [DEST]
    else:
        assert listing(dest_dir) == []
    # The disk is back: the same write succeeds.
    async with atf.atomic_write(dest, overwrite=overwrite) as f:
        await f.write(DATA)
    assert dest.read_bytes() == DATA
    assert listing(dest_dir) == [DEST]


# --------------------------------------------------------------------------- #
# unlink and rmdir: EBUSY and EPERM
# --------------------------------------------------------------------------- #

UNLINK_CODES = [errno.EBUSY, errno.EPERM]
NamedClose = Literal["aclose", "async-with", "delete_on_close=False"]


async def close_named(how: NamedClose, directory: Path) -> str:
    """Write DATA to a NamedTemporaryFile and close it ``how``; its name."""
    if how == "aclose":
        f = await atf.NamedTemporaryFile(dir=directory)
        try:
            await f.write(DATA)
        finally:
            try:
                await f.aclose()
            finally:
                assert f.closed
        return str(f.name)
    delete_on_close = how != "delete_on_close=False"
    async with atf.NamedTemporaryFile(
        dir=directory, delete_on_close=delete_on_close
    ) as f:
        name = str(f.name)
        await f.write(DATA)
        if not delete_on_close:
            await f.aclose()  # survives it
            assert os.path.exists(name)
    return name


@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
@pytest.mark.parametrize("how", ["aclose", "async-with", "delete_on_close=False"])
async def test_named_file_delete_fault(
    how: NamedClose, code: int, faults: SyscallFaults, scratch_dir: Path
) -> None:
    rule = faults.fail("unlink", code)
    with pytest.raises(stdlib_type(code)) as caught:
        await close_named(how, scratch_dir)
    assert_fault(caught.value, code)
    assert rule.hits == 1
    faults.clear()
    # The file is necessarily still there: closed, and whole.
    (remaining,) = listing(scratch_dir)
    assert caught.value.filename == str(scratch_dir / remaining)
    assert (scratch_dir / remaining).read_bytes() == DATA
    os.unlink(scratch_dir / remaining)


def route_closer_unlink(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the standard library's closer call ``os.unlink`` as it is now.

    Its ``cleanup`` (``close`` before 3.12) takes ``unlink=_os.unlink`` as a
    default argument, bound when ``tempfile`` was imported, out of reach of a
    patch of ``os``: swap that default for the patched function.
    """
    closer: Any = vars(tempfile)["_TemporaryFileCloser"]
    method: Any = getattr(closer, "cleanup", None) or closer.close
    defaults = tuple(
        os.unlink if default is REAL_UNLINK else default
        for default in method.__defaults__
    )
    assert defaults != method.__defaults__, "the closer's unlink default moved"
    monkeypatch.setattr(method, "__defaults__", defaults)


@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
@pytest.mark.parametrize("how", ["aclose", "async-with", "delete_on_close=False"])
def test_stdlib_named_file_delete_fault(
    how: NamedClose,
    code: int,
    faults: SyscallFaults,
    scratch_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if how == "delete_on_close=False" and sys.version_info < (3, 12):
        pytest.skip("delete_on_close is new in Python 3.12")
    route_closer_unlink(monkeypatch)
    rule = faults.fail("unlink", code)

    def close() -> None:
        if how == "aclose":
            f = tempfile.NamedTemporaryFile(dir=scratch_dir)  # noqa: SIM115
            f.write(DATA)
            f.close()
            return
        kwargs: dict[str, Any] = {}
        if how == "delete_on_close=False":
            kwargs["delete_on_close"] = False
        with tempfile.NamedTemporaryFile(dir=scratch_dir, **kwargs) as f:
            f.write(DATA)
            if kwargs:
                f.close()

    with pytest.raises(stdlib_type(code)) as caught:
        close()
    assert_fault(caught.value, code)
    assert rule.hits == 1
    faults.clear()
    (remaining,) = listing(scratch_dir)
    assert caught.value.filename == str(scratch_dir / remaining)
    assert (scratch_dir / remaining).read_bytes() == DATA
    os.unlink(scratch_dir / remaining)


@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
async def test_unnamed_fallback_creation_unlink_fault(
    code: int,
    faults: SyscallFaults,
    scratch_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without O_TMPFILE an unnamed file is a named one unlinked at once: when
    # that unlink fails, the creation fails, and (as in the standard library)
    # the name it could not remove is left.
    use_named_fallback(monkeypatch)
    rule = faults.fail("unlink", code)
    with pytest.raises(stdlib_type(code)) as caught:
        await atf.TemporaryFile(dir=scratch_dir)
    assert_fault(caught.value, code)
    assert rule.hits == 1
    faults.clear()
    (remaining,) = listing(scratch_dir)
    assert caught.value.filename == str(scratch_dir / remaining)
    os.unlink(scratch_dir / remaining)


@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
def test_stdlib_unnamed_fallback_creation_unlink_fault(
    code: int,
    faults: SyscallFaults,
    scratch_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "_O_TMPFILE_WORKS", False, raising=False)
    rule = faults.fail("unlink", code)
    with pytest.raises(stdlib_type(code)) as caught:
        tempfile.TemporaryFile(dir=scratch_dir)  # noqa: SIM115
    assert_fault(caught.value, code)
    assert rule.hits == 1
    faults.clear()
    (remaining,) = listing(scratch_dir)
    assert caught.value.filename == str(scratch_dir / remaining)
    os.unlink(scratch_dir / remaining)


# Regression (found by this suite, fixed): persist(dest, overwrite=False) of a
# NamedTemporaryFile links dest, then fails to unlink the old name and raises, leaving
# dest behind: the failed persist left a name in dest's directory, and the retry is a
# FileExistsError (_keep.rename_into_place: undo the link, or keep the file, when the
# unlink fails)


@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
async def test_exclusive_persist_of_a_named_file_when_the_old_name_stays(
    code: int,
    faults: SyscallFaults,
    scratch_dir: Path,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = dest_dir / DEST
    async with keepable("NamedTemporaryFile", scratch_dir, monkeypatch, faults) as f:
        entries = scratch_entries("NamedTemporaryFile", f.name)
        old_name = str(f.name)
        # Only the old name's unlink, once dest is linked: undoing the link
        # (unlinking dest) is allowed to work.
        rule = faults.fail("unlink", code, match=lambda paths: paths[-1] == old_name)
        try:
            await f.persist(dest, overwrite=False)
        except OSError as error:
            assert_fault(error, code)
            succeeded = False
        else:
            succeeded = True
        assert rule.hits == 1
        faults.clear()
        await assert_still_intact(f)
        if succeeded:
            # Then it is kept under dest, and closing it deletes nothing.
            await f.aclose()
            assert dest.read_bytes() == DATA
            assert listing(dest_dir) == [DEST]
            for name in listing(scratch_dir):
                os.unlink(scratch_dir / name)
            return
        # A failed persist leaves no name in dest's directory, and can be retried.
        assert listing(dest_dir) == []
        assert listing(scratch_dir) == entries
        await persist_again_and_close(
            f, dest, scratch_dir, overwrite=False, fsync=False
        )


def is_staging_name(paths: tuple[str, ...]) -> bool:
    """An unlink of the package's ``.tmp`` file beside dest (a copy, or pending)."""
    return os.path.basename(paths[-1]).startswith(".tmp")


@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
async def test_exclusive_persist_by_copy_when_the_copy_name_stays(
    code: int,
    faults: SyscallFaults,
    scratch_dir: Path,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An unnamed file that cannot be linked is copied beside dest, the copy
    # linked to dest and its own name unlinked.  When that unlink fails, the
    # link is undone: dest is not left behind by a persist that raised.
    dest = dest_dir / DEST
    async with keepable(
        "TemporaryFile-fallback", scratch_dir, monkeypatch, faults
    ) as f:
        rule = faults.fail("unlink", code, times=1, match=is_staging_name)
        with pytest.raises(stdlib_type(code)) as caught:
            await f.persist(dest, overwrite=False)
        assert_fault(caught.value, code)
        assert rule.hits == 1
        faults.clear()
        await assert_still_intact(f)
        assert listing(dest_dir) == []
        assert listing(scratch_dir) == []
        await persist_again_and_close(
            f, dest, scratch_dir, overwrite=False, fsync=False
        )


@pytest.mark.parametrize("times", [1, None], ids=["once", "always"])
@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
async def test_atomic_write_exclusive_commit_when_the_temporary_name_stays(
    code: int,
    times: int | None,
    faults: SyscallFaults,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The named fallback links its file to dest, then unlinks its own name.
    # When that fails, the link is undone: the write raised, so dest does not
    # exist.  If the file's name cannot be removed at all, the error names it.
    use_named_fallback(monkeypatch)
    dest = dest_dir / DEST
    rule = faults.fail("unlink", code, times=times, match=is_staging_name)
    with pytest.raises(stdlib_type(code)) as caught:
        async with atf.atomic_write(dest, overwrite=False) as f:
            await f.write(DATA)
    assert_fault(caught.value, code)
    assert rule.hits == (1 if times == 1 else 2)
    faults.clear()
    if times is None:
        (stray,) = listing(dest_dir)
        assert stray.startswith(".tmp")
        assert caught.value.filename == str(dest_dir / stray)
        assert (dest_dir / stray).read_bytes() == DATA
        os.unlink(dest_dir / stray)
    assert listing(dest_dir) == []
    async with atf.atomic_write(dest, overwrite=False) as f:
        await f.write(DATA)
    assert dest.read_bytes() == DATA
    assert listing(dest_dir) == [DEST]


@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
async def test_atomic_write_named_discard_unlink_fault(
    code: int,
    faults: SyscallFaults,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The body fails; its temporary file cannot be removed: that error wins
    # (the file is left, which the caller must hear of), the body's is its
    # context, and the destination is untouched.
    use_named_fallback(monkeypatch)
    dest = dest_dir / DEST
    dest.write_bytes(OLD)
    rule = faults.fail("unlink", code)

    async def fail_in_the_body() -> None:
        async with atf.atomic_write(dest) as f:
            await f.write(DATA)
            raise ValueError("the body failed")

    with pytest.raises(stdlib_type(code)) as caught:
        await fail_in_the_body()
    assert_fault(caught.value, code)
    assert isinstance(caught.value.__context__, ValueError)
    assert rule.hits == 1
    faults.clear()
    assert dest.read_bytes() == OLD
    (stray,) = [name for name in listing(dest_dir) if name != DEST]
    assert caught.value.filename == str(dest_dir / stray)
    os.unlink(dest_dir / stray)


Target = Literal["file", "subdirectory", "top"]

# What is left when removing ``target`` fails: the package unlinks the files
# of a directory before it descends into its subdirectories.
LEFT_AFTER: dict[Target, list[str]] = {
    "file": ["top", "top/sub", "top/sub/b.txt"],
    "subdirectory": ["top", "top/sub"],
    "top": ["top"],
}


def populate(top: Path) -> dict[Target, Path]:
    """``top/a.txt`` and ``top/sub/b.txt``; each target's path."""
    (top / "a.txt").write_bytes(b"a")
    (top / "sub").mkdir()
    (top / "sub" / "b.txt").write_bytes(b"b")
    return {"file": top / "sub" / "b.txt", "subdirectory": top / "sub", "top": top}


def relative_tree(scratch_dir: Path, top: Path) -> list[str]:
    return [entry.replace(top.name, "top", 1) for entry in tree(scratch_dir)]


@pytest.mark.parametrize(
    "ignore", [False, True], ids=["raise", "ignore_cleanup_errors"]
)
@pytest.mark.parametrize("code", UNLINK_CODES, ids=name_of)
@pytest.mark.parametrize("target", ["file", "subdirectory", "top"])
@pytest.mark.parametrize("how", ["cleanup", "async-with"])
async def test_directory_cleanup_fault(
    how: str,
    target: Target,
    code: int,
    ignore: bool,
    faults: SyscallFaults,
    scratch_dir: Path,
) -> None:
    directory = await atf.TemporaryDirectory(
        dir=scratch_dir, ignore_cleanup_errors=ignore
    )
    top = Path(directory.name)
    failing = str(populate(top)[target])
    syscall = "unlink" if target == "file" else "rmdir"
    rule = faults.fail(syscall, code, match=lambda paths: paths[-1] == failing)

    async def clean_up() -> None:
        if how == "cleanup":
            await directory.cleanup()
        else:
            async with directory:
                pass

    if ignore:
        await clean_up()
    else:
        with pytest.raises(stdlib_type(code)) as caught:
            await clean_up()
        assert_fault(caught.value, code)
        assert caught.value.filename == failing
    # EPERM is retried once after making the directory writable.
    assert rule.hits == (2 if code == errno.EPERM and target != "top" else 1)
    faults.clear()
    assert relative_tree(scratch_dir, top) == LEFT_AFTER[target]
    # Calling it again removes what is left.
    await directory.cleanup()
    assert listing(scratch_dir) == []


@pytest.mark.skipif(
    sys.version_info < (3, 13), reason="the contract is 3.13's TemporaryDirectory"
)
@pytest.mark.parametrize(
    "ignore", [False, True], ids=["raise", "ignore_cleanup_errors"]
)
@pytest.mark.parametrize("target", ["file", "subdirectory", "top"])
def test_stdlib_directory_cleanup_fault(
    target: Target, ignore: bool, faults: SyscallFaults, scratch_dir: Path
) -> None:
    # EBUSY only: under a lasting EPERM, 3.13's cleanup recurses until it
    # raises RecursionError (its PermissionError handler retries forever),
    # which the package does not copy.  The order in which shutil visits the
    # entries is the directory's, so only the failing entry's fate is compared.
    directory = tempfile.TemporaryDirectory(
        dir=scratch_dir, ignore_cleanup_errors=ignore
    )
    top = Path(directory.name)
    failing = populate(top)[target]
    syscall = "unlink" if target == "file" else "rmdir"
    rule = faults.fail(
        syscall, errno.EBUSY, match=lambda paths: paths[-1] == str(failing)
    )
    if ignore:
        directory.cleanup()
    else:
        with pytest.raises(stdlib_type(errno.EBUSY)) as caught:
            directory.cleanup()
        assert_fault(caught.value, errno.EBUSY)
    assert rule.hits >= 1
    faults.clear()
    assert failing.exists()
    directory.cleanup()
    assert listing(scratch_dir) == []
