"""persist(): giving a temporary file its final name, atomically, and keeping it.

Mostly NamedTemporaryFile (a rename); a few tests cover the unnamed files
(TemporaryFile, SpooledTemporaryFile), which are linked into place instead.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import anyio_tempfile as atf

if sys.version_info >= (3, 11):
    from typing import assert_type
elif TYPE_CHECKING:
    from typing_extensions import assert_type
else:

    def assert_type(value: object, expected_type: object, /) -> object:
        """Runtime no-op, as in ``typing``; the type checkers do the checking."""
        return value


pytestmark = pytest.mark.anyio

# These tests look at the file system directly and synchronously on purpose: what
# they check is its state at that instant, which a worker thread would not change.
# ruff: noqa: ASYNC240


def listing(directory: str | Path) -> list[str]:
    return sorted(os.listdir(directory))


def read_by_name(name: str | bytes | Path) -> bytes:
    with open(name, "rb") as reopened:
        return reopened.read()


def write_by_name(name: str | bytes | Path, data: bytes) -> None:
    with open(name, "wb") as created:
        created.write(data)


def mode_of(name: str | bytes | Path) -> int:
    return stat.S_IMODE(os.stat(name).st_mode)


@pytest.fixture
def other_device_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory on a different file system from ``tmp_path``."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm to provide a second file system")
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the same file system as the temporary directory")
    directory = Path(tempfile.mkdtemp(prefix="atf-persist-", dir="/dev/shm"))
    try:
        yield directory
    finally:
        for name in os.listdir(directory):
            os.unlink(directory / name)
        os.rmdir(directory)


@pytest.fixture
def dest_dir(tmp_path: Path) -> Path:
    """An empty directory for persist destinations, apart from ``scratch_dir``."""
    directory = tmp_path / "dest"
    directory.mkdir()
    return directory


# --------------------------------------------------------------------------- #
# NamedTemporaryFile: the rename
# --------------------------------------------------------------------------- #


async def test_persist_gives_the_data_the_new_name(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"payload\x00\xff")
        await f.flush()
        await f.persist(dest)
        assert listing(no_leaks) == []
        assert listing(dest_dir) == ["kept.bin"]
        assert read_by_name(dest) == b"payload\x00\xff"
    os.unlink(dest)


async def test_persist_renames_the_same_file_without_copying(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        inode = os.fstat(await f.fileno()).st_ino
        await f.persist(dest)
        assert os.stat(dest).st_ino == inode
    os.unlink(dest)


async def test_persist_flushes_buffered_writes_first(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"still in the buffer")
        await f.persist(dest)
        assert read_by_name(dest) == b"still in the buffer"
    os.unlink(dest)


async def test_persist_within_the_same_directory(no_leaks: Path) -> None:
    dest = no_leaks / "final.txt"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"here")
        await f.persist(dest)
        assert listing(no_leaks) == ["final.txt"]
    assert listing(no_leaks) == ["final.txt"]
    assert read_by_name(dest) == b"here"
    os.unlink(dest)


async def test_persist_returns_absolute_str_for_relative_str_dest(
    no_leaks: Path, dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dest_dir)
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        result = await f.persist("kept.bin")
    assert type(result) is str
    assert result == str(dest_dir / "kept.bin")
    assert listing(dest_dir) == ["kept.bin"]
    os.unlink(result)


async def test_persist_returns_absolute_bytes_for_relative_bytes_dest(
    no_leaks: Path, dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dest_dir)
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        result = await f.persist(b"kept.bin")
    assert type(result) is bytes
    assert result == os.fsencode(dest_dir / "kept.bin")
    assert listing(dest_dir) == ["kept.bin"]
    os.unlink(result)


async def test_persist_returns_absolute_dest_as_given(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = str(dest_dir / "kept.bin")
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        result = await f.persist(dest)
    assert result == dest
    os.unlink(dest)


async def test_persist_relative_dest_is_resolved_against_the_cwd_at_call_time(
    no_leaks: Path, dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (dest_dir / "sub").mkdir()
    monkeypatch.chdir(dest_dir)
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        result = await f.persist(os.path.join("sub", "..", "sub", "kept.bin"))
    assert result == os.path.abspath(dest_dir / "sub" / "kept.bin")
    assert listing(dest_dir / "sub") == ["kept.bin"]
    os.unlink(result)


async def test_persist_result_is_typed_like_dest(
    no_leaks: Path, dest_dir: Path
) -> None:
    async with (
        atf.NamedTemporaryFile(dir=no_leaks) as text_named,
        atf.NamedTemporaryFile(dir=no_leaks) as bytes_named,
    ):
        assert_type(await text_named.persist(str(dest_dir / "text")), str)
        assert_type(await bytes_named.persist(os.fsencode(dest_dir / "bytes")), bytes)
    assert listing(dest_dir) == ["bytes", "text"]
    os.unlink(dest_dir / "bytes")
    os.unlink(dest_dir / "text")


async def test_persist_accepts_pathlike_dest(no_leaks: Path, dest_dir: Path) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"pathlike")
        result = await f.persist(dest)
    assert os.fspath(result) == str(dest)
    assert read_by_name(dest) == b"pathlike"
    os.unlink(dest)


async def test_persist_of_bytes_named_file_to_str_dest(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = str(dest_dir / "kept.bin")
    async with atf.NamedTemporaryFile(dir=os.fsencode(no_leaks)) as f:
        await f.write(b"bytes-named")
        result = await f.persist(dest)
    assert result == dest
    assert read_by_name(dest) == b"bytes-named"
    os.unlink(dest)


async def test_persist_replaces_an_existing_dest_by_default(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    write_by_name(dest, b"old contents, longer than the new")
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"new")
        await f.persist(dest)
    assert listing(dest_dir) == ["kept.bin"]
    assert listing(no_leaks) == []
    assert read_by_name(dest) == b"new"
    os.unlink(dest)


async def test_persist_with_overwrite_true_replaces_an_existing_dest(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    write_by_name(dest, b"old")
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"new")
        await f.persist(dest, overwrite=True)
    assert listing(dest_dir) == ["kept.bin"]
    assert read_by_name(dest) == b"new"
    os.unlink(dest)


async def test_persist_with_overwrite_false_creates_a_missing_dest(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"first")
        await f.persist(dest, overwrite=False)
    assert listing(dest_dir) == ["kept.bin"]
    assert listing(no_leaks) == []
    assert read_by_name(dest) == b"first"
    os.unlink(dest)


async def test_persist_with_overwrite_false_onto_existing_dest_raises(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    write_by_name(dest, b"precious")
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        temp_base = os.path.basename(f.name)
        await f.write(b"candidate")
        with pytest.raises(FileExistsError):
            await f.persist(dest, overwrite=False)
        # The temporary file, its data and its position are all still ours.
        assert listing(no_leaks) == [temp_base]
        assert read_by_name(f.name) == b"candidate"
        assert await f.tell() == len(b"candidate")
        await f.seek(0)
        assert await f.read() == b"candidate"
        # And dest is exactly as it was, with nothing else beside it.
        assert listing(dest_dir) == ["kept.bin"]
        assert read_by_name(dest) == b"precious"
    # The failed persist left it a temporary file: the block still removes it.
    assert listing(no_leaks) == []
    assert read_by_name(dest) == b"precious"
    os.unlink(dest)


async def test_persist_with_overwrite_false_leaves_a_dest_symlink_alone(
    no_leaks: Path, dest_dir: Path
) -> None:
    # A dangling symlink is an existing name too: it must not be replaced.
    dest = dest_dir / "kept.bin"
    os.symlink(dest_dir / "nowhere", dest)
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        with pytest.raises(FileExistsError):
            await f.persist(dest, overwrite=False)
    assert os.readlink(dest) == str(dest_dir / "nowhere")
    assert listing(dest_dir) == ["kept.bin"]
    os.unlink(dest)


async def test_persist_retried_after_a_refusal_succeeds(
    no_leaks: Path, dest_dir: Path
) -> None:
    taken = dest_dir / "taken.bin"
    write_by_name(taken, b"precious")
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"second try")
        with pytest.raises(FileExistsError):
            await f.persist(taken, overwrite=False)
        result = await f.persist(dest_dir / "free.bin", overwrite=False)
    assert os.fspath(result) == str(dest_dir / "free.bin")
    assert listing(dest_dir) == ["free.bin", "taken.bin"]
    assert read_by_name(dest_dir / "free.bin") == b"second try"
    assert read_by_name(taken) == b"precious"
    assert listing(no_leaks) == []
    os.unlink(taken)
    os.unlink(dest_dir / "free.bin")


async def test_persist_across_file_systems_raises_exdev(
    no_leaks: Path, other_device_dir: Path
) -> None:
    dest = other_device_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        temp_base = os.path.basename(f.name)
        await f.write(b"stays home")
        with pytest.raises(OSError) as raised:  # noqa: PT011 - errno checked below
            await f.persist(dest)
        assert raised.value.errno == errno.EXDEV
        assert listing(other_device_dir) == []
        assert listing(no_leaks) == [temp_base]
        assert read_by_name(f.name) == b"stays home"
        assert await f.tell() == len(b"stays home")
    assert listing(no_leaks) == []


async def test_persist_onto_a_directory_raises_and_keeps_the_file(
    no_leaks: Path, dest_dir: Path
) -> None:
    (dest_dir / "a-directory").mkdir()
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        temp_base = os.path.basename(f.name)
        await f.write(b"not into a dir")
        with pytest.raises(IsADirectoryError):
            await f.persist(dest_dir / "a-directory")
        assert listing(no_leaks) == [temp_base]
        assert read_by_name(f.name) == b"not into a dir"
        assert listing(dest_dir) == ["a-directory"]
        assert listing(dest_dir / "a-directory") == []
    os.rmdir(dest_dir / "a-directory")


async def test_persist_into_a_missing_directory_raises_and_keeps_the_file(
    no_leaks: Path, dest_dir: Path
) -> None:
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        temp_base = os.path.basename(f.name)
        await f.write(b"homeless")
        with pytest.raises(FileNotFoundError):
            await f.persist(dest_dir / "missing" / "kept.bin")
        assert listing(no_leaks) == [temp_base]
        assert read_by_name(f.name) == b"homeless"
        assert listing(dest_dir) == []


async def test_persist_with_fsync_keeps_the_data(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "durable.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"durable")
        result = await f.persist(dest, fsync=True)
    assert os.fspath(result) == str(dest)
    assert listing(dest_dir) == ["durable.bin"]
    assert read_by_name(dest) == b"durable"
    os.unlink(dest)


async def test_persist_with_fsync_syncs_the_file_and_its_directory(
    no_leaks: Path, dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        # Identify what was synced by (device, inode): descriptors get reused.
        status = os.fstat(descriptor)
        synced.append((status.st_dev, status.st_ino))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    dest = dest_dir / "durable.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"durable")
        await f.persist(dest, fsync=True)
        monkeypatch.undo()
        file_identity = (os.stat(dest).st_dev, os.stat(dest).st_ino)
        dir_identity = (os.stat(dest_dir).st_dev, os.stat(dest_dir).st_ino)
        assert file_identity in synced
        assert dir_identity in synced
        assert synced.index(file_identity) < synced.index(dir_identity)
    os.unlink(dest)


async def test_persisted_file_keeps_mode_0600(no_leaks: Path, dest_dir: Path) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.persist(dest)
    assert mode_of(dest) == 0o600
    os.unlink(dest)


async def test_persisted_file_keeps_mode_0600_when_replacing(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    write_by_name(dest, b"old")
    os.chmod(dest, 0o644)
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.persist(dest)
    assert mode_of(dest) == 0o600
    os.unlink(dest)


async def test_file_stays_open_and_usable_after_persist(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"before")
        await f.persist(dest)
        assert f.closed is False
        assert await f.tell() == len(b"before")
        await f.write(b"+after")
        await f.flush()
        assert read_by_name(dest) == b"before+after"
        await f.seek(0)
        assert await f.read() == b"before+after"
        await f.truncate(3)
        await f.flush()
        assert read_by_name(dest) == b"bef"
    os.unlink(dest)


@pytest.mark.parametrize("delete_on_close", [True, False])
async def test_closing_after_persist_deletes_nothing(
    no_leaks: Path, dest_dir: Path, delete_on_close: bool
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(
        dir=no_leaks, delete_on_close=delete_on_close
    ) as f:
        await f.write(b"keep me")
        await f.persist(dest)
        await f.aclose()
        assert listing(dest_dir) == ["kept.bin"]
    assert listing(dest_dir) == ["kept.bin"]
    assert listing(no_leaks) == []
    assert read_by_name(dest) == b"keep me"
    os.unlink(dest)


async def test_awaited_file_closed_after_persist_deletes_nothing(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    f = await atf.NamedTemporaryFile(dir=no_leaks)
    await f.write(b"keep me")
    await f.persist(dest)
    await f.aclose()
    assert listing(dest_dir) == ["kept.bin"]
    assert read_by_name(dest) == b"keep me"
    os.unlink(dest)


async def test_persist_of_a_delete_false_file_leaves_only_dest(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks, delete=False) as f:
        await f.write(b"never a temp")
        await f.persist(dest)
    assert listing(no_leaks) == []
    assert listing(dest_dir) == ["kept.bin"]
    assert read_by_name(dest) == b"never a temp"
    os.unlink(dest)


async def test_closing_after_persist_spares_a_new_file_at_the_old_name(
    no_leaks: Path, dest_dir: Path
) -> None:
    # After the rename the old name is free; whoever takes it next is not ours to
    # delete when the block exits.
    dest = dest_dir / "kept.bin"
    async with atf.NamedTemporaryFile(dir=no_leaks, delete_on_close=False) as f:
        old_name = f.name
        await f.persist(dest)
        write_by_name(old_name, b"someone else's")
        await f.aclose()
    assert read_by_name(old_name) == b"someone else's"
    assert listing(dest_dir) == ["kept.bin"]
    os.unlink(old_name)
    os.unlink(dest)


# --------------------------------------------------------------------------- #
# TemporaryFile: an unnamed file, linked into place
# --------------------------------------------------------------------------- #


async def test_unnamed_file_persist_gives_the_data_a_name(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"from the void")
        result = await f.persist(dest)
    assert os.fspath(result) == str(dest)
    assert listing(dest_dir) == ["kept.bin"]
    assert listing(no_leaks) == []
    assert read_by_name(dest) == b"from the void"
    os.unlink(dest)


async def test_unnamed_file_persist_links_the_same_inode(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.TemporaryFile(dir=no_leaks) as f:
        inode = os.fstat(await f.fileno()).st_ino
        await f.persist(dest)
        assert os.stat(dest).st_ino == inode
    os.unlink(dest)


async def test_unnamed_file_persist_keeps_mode_0600(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.persist(dest)
    assert mode_of(dest) == 0o600
    os.unlink(dest)


async def test_unnamed_file_persist_replaces_an_existing_dest(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    write_by_name(dest, b"old contents")
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"new")
        await f.persist(dest)
    assert listing(dest_dir) == ["kept.bin"]
    assert read_by_name(dest) == b"new"
    os.unlink(dest)


async def test_unnamed_file_persist_with_overwrite_false_onto_existing_raises(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    write_by_name(dest, b"precious")
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"candidate")
        with pytest.raises(FileExistsError):
            await f.persist(dest, overwrite=False)
        assert listing(dest_dir) == ["kept.bin"]
        assert read_by_name(dest) == b"precious"
        assert await f.tell() == len(b"candidate")
        await f.seek(0)
        assert await f.read() == b"candidate"
    assert listing(no_leaks) == []
    os.unlink(dest)


async def test_unnamed_file_persist_across_file_systems_raises_exdev(
    no_leaks: Path, other_device_dir: Path
) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"stays home")
        with pytest.raises(OSError) as raised:  # noqa: PT011 - errno checked below
            await f.persist(other_device_dir / "kept.bin")
        assert raised.value.errno == errno.EXDEV
        assert listing(other_device_dir) == []
        await f.seek(0)
        assert await f.read() == b"stays home"


async def test_unnamed_file_persist_with_fsync_syncs_the_file_and_its_directory(
    no_leaks: Path, dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        status = os.fstat(descriptor)
        synced.append((status.st_dev, status.st_ino))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    dest = dest_dir / "durable.bin"
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"durable")
        await f.persist(dest, fsync=True)
        monkeypatch.undo()
        file_identity = (os.stat(dest).st_dev, os.stat(dest).st_ino)
        dir_identity = (os.stat(dest_dir).st_dev, os.stat(dest_dir).st_ino)
        assert file_identity in synced
        assert dir_identity in synced
        assert synced.index(file_identity) < synced.index(dir_identity)
    assert read_by_name(dest) == b"durable"
    os.unlink(dest)


async def test_unnamed_file_stays_usable_after_persist(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"before")
        await f.persist(dest)
        assert await f.tell() == len(b"before")
        await f.write(b"+after")
        await f.flush()
        assert read_by_name(dest) == b"before+after"
    assert read_by_name(dest) == b"before+after"
    assert listing(dest_dir) == ["kept.bin"]
    os.unlink(dest)


# --------------------------------------------------------------------------- #
# SpooledTemporaryFile: in memory, or rolled over to an unnamed file
# --------------------------------------------------------------------------- #


async def test_in_memory_spooled_file_persist_writes_the_data(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.SpooledTemporaryFile(max_size=1024, dir=no_leaks) as f:
        await f.write(b"small")
        assert f.rolled is False
        result = await f.persist(dest)
    assert os.fspath(result) == str(dest)
    assert listing(dest_dir) == ["kept.bin"]
    assert listing(no_leaks) == []
    assert read_by_name(dest) == b"small"
    assert mode_of(dest) == 0o600
    os.unlink(dest)


async def test_in_memory_spooled_file_writes_after_persist_reach_dest(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.SpooledTemporaryFile(max_size=1024, dir=no_leaks) as f:
        await f.write(b"small")
        await f.persist(dest)
        assert await f.tell() == len(b"small")
        await f.write(b"+more")
        await f.flush()
        assert read_by_name(dest) == b"small+more"
    assert read_by_name(dest) == b"small+more"
    os.unlink(dest)


async def test_in_memory_spooled_file_persist_with_overwrite_false_raises(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    write_by_name(dest, b"precious")
    async with atf.SpooledTemporaryFile(max_size=1024, dir=no_leaks) as f:
        await f.write(b"candidate")
        with pytest.raises(FileExistsError):
            await f.persist(dest, overwrite=False)
        assert listing(dest_dir) == ["kept.bin"]
        assert read_by_name(dest) == b"precious"
        assert await f.tell() == len(b"candidate")
        await f.seek(0)
        assert await f.read() == b"candidate"
    assert listing(no_leaks) == []
    os.unlink(dest)


async def test_in_memory_spooled_file_persist_into_a_missing_directory_raises(
    no_leaks: Path, dest_dir: Path
) -> None:
    async with atf.SpooledTemporaryFile(max_size=1024, dir=no_leaks) as f:
        await f.write(b"still mine")
        with pytest.raises(FileNotFoundError):
            await f.persist(dest_dir / "missing" / "kept.bin")
        assert f.rolled is False
        assert await f.tell() == len(b"still mine")
        await f.seek(0)
        assert await f.read() == b"still mine"
    assert listing(dest_dir) == []


async def test_rolled_spooled_file_persist_links_the_same_inode(
    no_leaks: Path, dest_dir: Path
) -> None:
    dest = dest_dir / "kept.bin"
    async with atf.SpooledTemporaryFile(max_size=4, dir=no_leaks) as f:
        await f.write(b"past the limit")
        assert f.rolled is True
        inode = os.fstat(await f.fileno()).st_ino
        await f.persist(dest)
        assert os.stat(dest).st_ino == inode
    assert listing(dest_dir) == ["kept.bin"]
    assert read_by_name(dest) == b"past the limit"
    os.unlink(dest)
