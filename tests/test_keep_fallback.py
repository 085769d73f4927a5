"""persist() on unnamed files: the named fallback behaves as the O_TMPFILE path.

API.md, "Keeping a file": on Linux an unnamed file (``TemporaryFile``, a
rolled-over ``SpooledTemporaryFile``) is linked into place from its ``O_TMPFILE``
descriptor; an in-memory spooled file is first written to an unnamed file in
``dest``'s directory.  Where ``O_TMPFILE`` is unavailable or refused, the
fallback copies the data to a named temporary file beside ``dest`` and renames
it.  Every behavioural test below runs its one body on both paths (the
``keep_path`` fixture: ``tmpfile`` and ``fallback``), for ``TemporaryFile`` and
``SpooledTemporaryFile`` (in memory and rolled over), binary and text.

The last section is the probe: ``O_TMPFILE`` is tried once per directory, a
directory whose file system refuses it is remembered and goes straight to the
fallback, other directories keep using ``O_TMPFILE``, and creation never fails
where the fallback works.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

import anyio_tempfile as atf
import anyio_tempfile._create
from anyio_tempfile._file import AsyncSpooledTemporaryFile, AsyncTemporaryFile

pytestmark = pytest.mark.anyio

KeepPath = Literal["tmpfile", "fallback"]
Kind = Literal["tempfile", "spooled-memory", "spooled-rolled"]
Mode = Literal["binary", "text"]
# How persist is asked: overwrite=True onto a missing or an existing dest, or
# overwrite=False onto a missing one (the refusal has a test of its own).
How = Literal["overwrite-absent", "overwrite-existing", "exclusive-absent"]

KINDS: list[Kind] = ["tempfile", "spooled-memory", "spooled-rolled"]
ON_DISK_KINDS: list[Kind] = ["tempfile", "spooled-rolled"]
MODES: list[Mode] = ["binary", "text"]

# Two parts, so that a position inside the data can be taken between them.  The
# second part starts with three ASCII characters: overwriting them in place
# with b"XYZ" keeps the text valid UTF-8.
BINARY_PARTS = (bytes(range(256)) * 8, b"abc" + bytes(range(255, -1, -1)) * 8)
TEXT_PARTS = ("première ligne ✓\n" * 50, "abc — deuxième, \x00 et \r\n" * 50)
OLD = b"the old content of dest, longer than nothing\n" * 3
PATCH = "XYZ"

MEMORY_MAX_SIZE = 1 << 20  # the spooled-memory kind never reaches it
ROLLED_MAX_SIZE = 64  # the spooled-rolled kind passes it with its first write

DEST = "kept.bin"


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def parts(mode: Mode) -> tuple[Any, Any]:
    return BINARY_PARTS if mode == "binary" else TEXT_PARTS


def encoded(mode: Mode, data: Any) -> bytes:
    """The bytes that ``data`` (one of ``parts(mode)``) becomes in the file."""
    if mode == "binary":
        assert isinstance(data, bytes)
        return data
    assert isinstance(data, str)
    return data.replace("\n", os.linesep).encode("utf-8")


def as_read(mode: Mode, data: bytes) -> Any:
    """What ``read()`` gives for file content ``data`` (text: newlines translated)."""
    if mode == "binary":
        return data
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()


def patch(mode: Mode) -> Any:
    return PATCH.encode() if mode == "binary" else PATCH


def o_tmpfile_works(directory: Path) -> bool:
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return False
    try:
        fd = os.open(directory, flag | os.O_RDWR, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


@pytest.fixture
def dest_dir(tmp_path: Path) -> Path:
    """An empty directory for persist destinations, apart from ``scratch_dir``."""
    directory = tmp_path / "dest"
    directory.mkdir()
    return directory


@pytest.fixture(params=["tmpfile", "fallback"])
def keep_path(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    scratch_dir: Path,
    dest_dir: Path,
) -> KeepPath:
    """Which way the unnamed file is kept: linked from O_TMPFILE, or copied."""
    chosen: KeepPath = request.param
    # A fresh per-directory cache, so that no other test's probe leaks in here.
    monkeypatch.setattr(anyio_tempfile._create, "_o_tmpfile_refused_in", set())
    if chosen == "tmpfile":
        if not (o_tmpfile_works(scratch_dir) and o_tmpfile_works(dest_dir)):
            pytest.skip("O_TMPFILE is not available here")
        monkeypatch.setattr(anyio_tempfile._create, "_o_tmpfile_available", True)
    else:
        monkeypatch.setattr(anyio_tempfile._create, "_o_tmpfile_available", False)
    return chosen


@pytest.fixture
def other_device_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory on a different file system from ``tmp_path``."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm to provide a second file system")
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the same file system as the temporary directory")
    directory = Path(tempfile.mkdtemp(prefix="atf-keep-", dir="/dev/shm"))
    try:
        yield directory
    finally:
        for name in os.listdir(directory):
            os.unlink(directory / name)
        os.rmdir(directory)


async def open_kind(kind: Kind, mode: Mode, directory: Path) -> AsyncTemporaryFile[Any]:
    file_mode = "w+b" if mode == "binary" else "w+"
    encoding = None if mode == "binary" else "utf-8"
    if kind == "tempfile":
        return await atf.TemporaryFile(file_mode, encoding=encoding, dir=directory)
    max_size = MEMORY_MAX_SIZE if kind == "spooled-memory" else ROLLED_MAX_SIZE
    return await atf.SpooledTemporaryFile(
        max_size, file_mode, encoding=encoding, dir=directory
    )


async def fill(f: AsyncTemporaryFile[Any], kind: Kind, mode: Mode) -> int:
    """Write both parts; the position between them (a ``tell()`` cookie)."""
    first, second = parts(mode)
    await f.write(first)
    between = await f.tell()
    await f.write(second)
    if kind != "tempfile":
        assert isinstance(f, AsyncSpooledTemporaryFile)
        assert f.rolled is (kind == "spooled-rolled")
    return between


def everything(mode: Mode) -> bytes:
    first, second = parts(mode)
    return encoded(mode, first) + encoded(mode, second)


# --------------------------------------------------------------------------- #
# The behaviour, on both paths
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fsync", [False, True], ids=["no-fsync", "fsync"])
@pytest.mark.parametrize(
    "how", ["overwrite-absent", "overwrite-existing", "exclusive-absent"]
)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_dest_holds_exactly_the_bytes_written_and_nothing_else_appears(
    no_leaks: Path,
    dest_dir: Path,
    keep_path: KeepPath,
    kind: Kind,
    mode: Mode,
    how: How,
    fsync: bool,
) -> None:
    dest = dest_dir / DEST
    if how == "overwrite-existing":
        dest.write_bytes(OLD)
    async with await open_kind(kind, mode, no_leaks) as f:
        await fill(f, kind, mode)
        result = await f.persist(dest, overwrite=how != "exclusive-absent", fsync=fsync)
        assert result == str(dest)
        assert dest.read_bytes() == everything(mode)
        assert listing(dest_dir) == [DEST]
        assert listing(no_leaks) == []
        assert mode_of(dest) == 0o600
    # Closing deleted nothing, and left nothing else behind.
    assert listing(dest_dir) == [DEST]
    assert dest.read_bytes() == everything(mode)
    dest.unlink()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_object_stays_usable_after_persist_at_the_same_position(
    no_leaks: Path, dest_dir: Path, keep_path: KeepPath, kind: Kind, mode: Mode
) -> None:
    first, second = parts(mode)
    head = encoded(mode, first)
    dest = dest_dir / DEST
    async with await open_kind(kind, mode, no_leaks) as f:
        between = await fill(f, kind, mode)
        await f.seek(between)
        if mode == "binary":
            # A read leaves read-ahead behind, in the loop and in the file
            # object: the position kept must be the logical one.
            assert await f.read(3) == b"abc"
            position = between + 3
            expected = head + b"abc" + PATCH.encode() + encoded(mode, second)[6:]
        else:
            position = between
            expected = head + PATCH.encode() + encoded(mode, second)[3:]
        await f.persist(dest)
        assert await f.tell() == position
        await f.write(patch(mode))
        await f.flush()
        assert dest.read_bytes() == expected
        await f.seek(0)
        assert await f.read() == as_read(mode, expected)
        # Growing it reaches dest too.
        await f.write(patch(mode))
        await f.flush()
        assert dest.read_bytes() == expected + PATCH.encode()
        assert listing(dest_dir) == [DEST]
        assert listing(no_leaks) == []
    assert dest.read_bytes() == expected + PATCH.encode()
    assert listing(dest_dir) == [DEST]
    dest.unlink()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_refused_exclusive_persist_leaves_data_position_and_no_stray_name(
    no_leaks: Path, dest_dir: Path, keep_path: KeepPath, kind: Kind, mode: Mode
) -> None:
    dest = dest_dir / DEST
    dest.write_bytes(OLD)
    async with await open_kind(kind, mode, no_leaks) as f:
        await fill(f, kind, mode)
        end = await f.tell()
        with pytest.raises(FileExistsError):
            await f.persist(dest, overwrite=False)
        assert dest.read_bytes() == OLD
        assert listing(dest_dir) == [DEST]
        assert listing(no_leaks) == []
        assert await f.tell() == end
        await f.seek(0)
        assert await f.read() == as_read(mode, everything(mode))
        # Still a temporary file, that can be kept elsewhere after all.
        await f.persist(dest_dir / "second-try.bin", overwrite=False)
        assert (dest_dir / "second-try.bin").read_bytes() == everything(mode)
    assert listing(dest_dir) == [DEST, "second-try.bin"]
    assert dest.read_bytes() == OLD
    (dest_dir / "second-try.bin").unlink()
    dest.unlink()


@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "exclusive"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ON_DISK_KINDS)
async def test_cross_device_persist_is_exdev_and_leaves_data_position_no_name(
    no_leaks: Path,
    other_device_dir: Path,
    keep_path: KeepPath,
    kind: Kind,
    mode: Mode,
    overwrite: bool,
) -> None:
    # API.md: "on the same file system (a cross-device dest is a clear OSError,
    # errno EXDEV)" -- on either path.  (An in-memory spooled file has no file
    # system yet: it goes straight to dest's, see the next test.)
    async with await open_kind(kind, mode, no_leaks) as f:
        await fill(f, kind, mode)
        end = await f.tell()
        with pytest.raises(OSError) as raised:  # noqa: PT011 - errno checked below
            await f.persist(other_device_dir / DEST, overwrite=overwrite)
        assert raised.value.errno == errno.EXDEV
        assert listing(other_device_dir) == []
        assert listing(no_leaks) == []
        assert await f.tell() == end
        await f.seek(0)
        assert await f.read() == as_read(mode, everything(mode))
    assert listing(other_device_dir) == []


@pytest.mark.parametrize("mode", MODES)
async def test_in_memory_spooled_persist_goes_straight_to_dests_file_system(
    no_leaks: Path, other_device_dir: Path, keep_path: KeepPath, mode: Mode
) -> None:
    dest = other_device_dir / DEST
    async with await open_kind("spooled-memory", mode, no_leaks) as f:
        await fill(f, "spooled-memory", mode)
        await f.persist(dest)
        assert dest.read_bytes() == everything(mode)
        assert listing(other_device_dir) == [DEST]
    assert listing(no_leaks) == []
    assert dest.read_bytes() == everything(mode)


@pytest.mark.parametrize("kind", KINDS)
async def test_fsync_syncs_the_kept_data_before_its_name_then_the_directory(
    no_leaks: Path,
    dest_dir: Path,
    keep_path: KeepPath,
    kind: Kind,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = dest_dir / DEST
    # (device, inode) of what each fsync synced -- descriptors get reused -- and
    # whether dest had a name at that moment.
    synced: list[tuple[tuple[int, int], bool]] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        status = os.fstat(descriptor)
        synced.append(((status.st_dev, status.st_ino), os.path.lexists(dest)))
        real_fsync(descriptor)

    async with await open_kind(kind, "binary", no_leaks) as f:
        await fill(f, kind, "binary")
        monkeypatch.setattr(os, "fsync", recording_fsync)
        await f.persist(dest, fsync=True)
        monkeypatch.undo()
        kept = os.stat(dest)
        directory = os.stat(dest_dir)
    kept_identity = (kept.st_dev, kept.st_ino)
    directory_identity = (directory.st_dev, directory.st_ino)
    # The inode that now holds dest's data was synced, before dest existed...
    assert (kept_identity, False) in synced
    # ... and dest's directory after the name appeared.
    assert (directory_identity, True) in synced
    assert synced.index((kept_identity, False)) < synced.index(
        (directory_identity, True)
    )
    assert dest.read_bytes() == everything("binary")
    dest.unlink()


@pytest.mark.parametrize("kind", ON_DISK_KINDS)
async def test_the_path_under_test_is_the_one_chosen(
    no_leaks: Path, dest_dir: Path, keep_path: KeepPath, kind: Kind
) -> None:
    # Guards the fixture: the tmpfile path links the very inode, the fallback
    # keeps a copy (so that the tests above really do run both paths).
    dest = dest_dir / DEST
    async with await open_kind(kind, "binary", no_leaks) as f:
        await fill(f, kind, "binary")
        before = os.fstat(await f.fileno()).st_ino
        await f.persist(dest)
        after = os.fstat(await f.fileno()).st_ino
        assert os.stat(dest).st_ino == after
    assert (before == after) is (keep_path == "tmpfile")
    dest.unlink()


# --------------------------------------------------------------------------- #
# The probe: once per directory, remembered where refused
# --------------------------------------------------------------------------- #

O_TMPFILE: int = getattr(os, "O_TMPFILE", 0)


@dataclass
class OpenSpy:
    """Stands in for ``os.open``: refuses O_TMPFILE in some directories, counts.

    ``tmpfile_tries``: the directories an ``O_TMPFILE`` open was tried in (and
    ``tmpfile_opened`` where it succeeded); ``named``: the directories a new
    named file was created in (``mkstemp``'s ``O_CREAT | O_EXCL``).
    """

    refused: dict[str, int]
    real_open: Any = os.open
    tmpfile_tries: list[str] = field(default_factory=list)
    tmpfile_opened: list[str] = field(default_factory=list)
    named: list[str] = field(default_factory=list)

    def __call__(
        self,
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        flags: int,
        mode: int = 0o777,
        *,
        dir_fd: int | None = None,
    ) -> int:
        name = os.fsdecode(path)
        if flags & O_TMPFILE == O_TMPFILE:
            self.tmpfile_tries.append(name)
            if name in self.refused:
                code = self.refused[name]
                raise OSError(code, os.strerror(code), name)
            fd: int = self.real_open(path, flags, mode, dir_fd=dir_fd)
            self.tmpfile_opened.append(name)
            return fd
        fd = self.real_open(path, flags, mode, dir_fd=dir_fd)
        if flags & (os.O_CREAT | os.O_EXCL) == os.O_CREAT | os.O_EXCL:
            self.named.append(os.path.dirname(name))
        return fd


@pytest.fixture
def refused_dir(tmp_path: Path) -> Path:
    """A directory whose (simulated) file system refuses O_TMPFILE."""
    directory = tmp_path / "refuses-o-tmpfile"
    directory.mkdir()
    return directory


@pytest.fixture
def probe(
    monkeypatch: pytest.MonkeyPatch, scratch_dir: Path, refused_dir: Path
) -> Iterator[OpenSpy]:
    """``os.open`` spied on, O_TMPFILE refused (EOPNOTSUPP) in ``refused_dir``.

    The probe's state starts fresh and is restored afterwards.  Tests may change
    the errno in ``spy.refused``.
    """
    if not o_tmpfile_works(scratch_dir):
        pytest.skip("O_TMPFILE is not available here")
    monkeypatch.setattr(anyio_tempfile._create, "_o_tmpfile_available", True)
    monkeypatch.setattr(anyio_tempfile._create, "_o_tmpfile_refused_in", set())
    spy = OpenSpy(refused={str(refused_dir): errno.EOPNOTSUPP})
    monkeypatch.setattr(os, "open", spy)
    yield spy
    monkeypatch.undo()


async def roundtrip(f: AsyncTemporaryFile[bytes], data: bytes) -> None:
    await f.write(data)
    await f.seek(0)
    assert await f.read() == data


@pytest.mark.parametrize("refusal", [errno.EOPNOTSUPP, errno.EINVAL])
async def test_refused_directory_falls_back_and_is_remembered(
    probe: OpenSpy, refused_dir: Path, refusal: int
) -> None:
    probe.refused[str(refused_dir)] = refusal
    async with atf.TemporaryFile(dir=refused_dir) as first:
        await roundtrip(first, b"first")
        assert listing(refused_dir) == []
    assert probe.tmpfile_tries == [str(refused_dir)]
    assert probe.named == [str(refused_dir)]
    # Every later creation there goes straight to the named fallback.
    async with atf.TemporaryFile(dir=refused_dir) as second:
        await roundtrip(second, b"second")
    async with atf.SpooledTemporaryFile(max_size=4, dir=refused_dir) as spooled:
        await spooled.write(b"past max_size")
        assert spooled.rolled is True
        await spooled.seek(0)
        assert await spooled.read() == b"past max_size"
    async with atf.atomic_write(refused_dir / "out.bin") as written:
        await written.write(b"atomically")
    assert probe.tmpfile_tries == [str(refused_dir)]
    assert probe.named == [str(refused_dir)] * 4
    assert probe.tmpfile_opened == []
    assert listing(refused_dir) == ["out.bin"]
    assert (refused_dir / "out.bin").read_bytes() == b"atomically"
    (refused_dir / "out.bin").unlink()


async def test_other_directories_still_use_o_tmpfile(
    probe: OpenSpy, refused_dir: Path, scratch_dir: Path
) -> None:
    async with atf.TemporaryFile(dir=refused_dir) as refused:
        await roundtrip(refused, b"fallback")
    async with atf.TemporaryFile(dir=scratch_dir) as elsewhere:
        await roundtrip(elsewhere, b"o_tmpfile")
        # Linked, not copied: it was an O_TMPFILE file.
        inode = os.fstat(await elsewhere.fileno()).st_ino
        await elsewhere.persist(scratch_dir / DEST)
        assert os.stat(scratch_dir / DEST).st_ino == inode
    async with atf.TemporaryFile(dir=scratch_dir) as again:
        await roundtrip(again, b"o_tmpfile again")
    assert probe.tmpfile_tries == [str(refused_dir), str(scratch_dir), str(scratch_dir)]
    assert probe.tmpfile_opened == [str(scratch_dir), str(scratch_dir)]
    assert probe.named == [str(refused_dir)]
    assert listing(scratch_dir) == [DEST]
    assert (scratch_dir / DEST).read_bytes() == b"o_tmpfile"
    (scratch_dir / DEST).unlink()


async def test_persist_into_a_refused_directory_works_through_the_fallback(
    probe: OpenSpy, refused_dir: Path, scratch_dir: Path
) -> None:
    # A rolled file made in the refused directory, and an in-memory one whose
    # rollover goes beside dest, into the refused directory.
    async with (
        atf.TemporaryFile(dir=refused_dir) as on_disk,
        atf.SpooledTemporaryFile(max_size=1024, dir=scratch_dir) as in_memory,
    ):
        await on_disk.write(b"on disk")
        await in_memory.write(b"in memory")
        await on_disk.persist(refused_dir / "a.bin", overwrite=False)
        await in_memory.persist(refused_dir / "b.bin", fsync=True)
        assert listing(refused_dir) == ["a.bin", "b.bin"]
        await on_disk.write(b", then more")
        await on_disk.flush()
    assert (refused_dir / "a.bin").read_bytes() == b"on disk, then more"
    assert (refused_dir / "b.bin").read_bytes() == b"in memory"
    assert listing(refused_dir) == ["a.bin", "b.bin"]
    assert listing(scratch_dir) == []
    assert probe.tmpfile_tries == [str(refused_dir)]
    (refused_dir / "a.bin").unlink()
    (refused_dir / "b.bin").unlink()


@pytest.mark.parametrize("unexpected", [errno.EPERM, errno.EACCES, errno.ENOSPC])
async def test_an_unexpected_refusal_never_fails_where_the_fallback_works(
    probe: OpenSpy, refused_dir: Path, unexpected: int
) -> None:
    # Not a "this file system never does O_TMPFILE" errno: not remembered, so
    # tried again next time, and meanwhile the named fallback does the work.
    probe.refused[str(refused_dir)] = unexpected
    for attempt in range(2):
        async with atf.TemporaryFile(dir=refused_dir) as f:
            await roundtrip(f, b"attempt %d" % attempt)
    assert probe.tmpfile_tries == [str(refused_dir)] * 2
    assert probe.named == [str(refused_dir)] * 2
    assert listing(refused_dir) == []


async def test_eisdir_from_an_old_kernel_turns_o_tmpfile_off_everywhere(
    probe: OpenSpy, refused_dir: Path, scratch_dir: Path
) -> None:
    # Before Linux 3.11 the O_TMPFILE bits read as O_DIRECTORY: EISDIR for any
    # directory, so it is never tried again, in any directory.
    probe.refused[str(refused_dir)] = errno.EISDIR
    async with atf.TemporaryFile(dir=refused_dir) as first:
        await roundtrip(first, b"first")
    async with atf.TemporaryFile(dir=scratch_dir) as second:
        await roundtrip(second, b"second")
    assert probe.tmpfile_tries == [str(refused_dir)]
    assert probe.named == [str(refused_dir), str(scratch_dir)]
    assert listing(refused_dir) == []
    assert listing(scratch_dir) == []
