"""Secure creation: permissions, no visible name, no inheritance, unique names,
and no path that an attacker planted is ever followed or reused.

API.md: ``O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC``, mode ``0o600`` for files and
``0o700`` for directories whatever the umask, random names, retry on collision.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import re
import resource
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import open_descriptors

import anyio_tempfile as atf

pytestmark = pytest.mark.anyio

# These tests look at the file system directly and synchronously on purpose: what
# they check is its state at that instant, which a worker thread would not change.
# ruff: noqa: ASYNC230, ASYNC240

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
UMASKS = [0o000, 0o022, 0o077, 0o277, 0o777]
NAME_CHARACTERS = "[a-z0-9_]"
REPOSITORY = Path(atf.__file__).resolve().parent.parent


@pytest.fixture(params=UMASKS, ids=[f"umask-{value:03o}" for value in UMASKS])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under this umask; the previous one is restored afterwards."""
    value: int = request.param
    previous = os.umask(value)
    try:
        yield value
    finally:
        os.umask(previous)


def permission_bits(st: os.stat_result) -> int:
    return stat.S_IMODE(st.st_mode)


# -- permissions --------------------------------------------------------------------


async def test_temporary_file_mode_is_0600_whatever_the_umask(
    scratch_dir: Path, umask: int
) -> None:
    async with atf.TemporaryFile(dir=scratch_dir) as file:
        assert permission_bits(os.fstat(await file.fileno())) == FILE_MODE


async def test_named_temporary_file_mode_is_0600_whatever_the_umask(
    scratch_dir: Path, umask: int
) -> None:
    async with atf.NamedTemporaryFile(dir=scratch_dir) as file:
        assert permission_bits(os.stat(file.name)) == FILE_MODE
        assert permission_bits(os.fstat(await file.fileno())) == FILE_MODE


async def test_rolled_over_spooled_file_mode_is_0600_whatever_the_umask(
    scratch_dir: Path, umask: int
) -> None:
    async with atf.SpooledTemporaryFile(max_size=4, dir=scratch_dir) as file:
        await file.write(b"past max_size")
        assert file.rolled
        assert permission_bits(os.fstat(await file.fileno())) == FILE_MODE


async def test_mkstemp_mode_is_0600_whatever_the_umask(
    scratch_dir: Path, umask: int
) -> None:
    fd, path = await atf.mkstemp(dir=scratch_dir)
    try:
        assert permission_bits(os.fstat(fd)) == FILE_MODE
        assert permission_bits(os.stat(path)) == FILE_MODE
    finally:
        os.close(fd)
        os.unlink(path)


async def test_mkdtemp_mode_is_0700_whatever_the_umask(
    scratch_dir: Path, umask: int
) -> None:
    path = await atf.mkdtemp(dir=scratch_dir)
    try:
        assert permission_bits(os.stat(path)) == DIRECTORY_MODE
    finally:
        os.rmdir(path)


async def test_temporary_directory_mode_is_0700_whatever_the_umask(
    scratch_dir: Path, umask: int
) -> None:
    async with atf.TemporaryDirectory(dir=scratch_dir) as path:
        assert permission_bits(os.stat(path)) == DIRECTORY_MODE
    assert os.listdir(scratch_dir) == []


async def test_umask_is_left_as_it_was(scratch_dir: Path, umask: int) -> None:
    async with atf.NamedTemporaryFile(dir=scratch_dir):
        pass
    os.rmdir(await atf.mkdtemp(dir=scratch_dir))
    assert os.umask(umask) == umask


# -- no name for TemporaryFile ------------------------------------------------------

IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
EVENT_HEADER = struct.Struct("iIII")


class DirectoryWatch:
    """inotify: the names that appeared in a directory (created or moved in)."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd: int = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            pytest.skip(f"inotify unavailable: {os.strerror(ctypes.get_errno())}")
        if (
            libc.inotify_add_watch(
                self.fd, os.fsencode(directory), IN_CREATE | IN_MOVED_TO
            )
            < 0
        ):
            os.close(self.fd)
            pytest.skip(f"inotify_add_watch failed: {os.strerror(ctypes.get_errno())}")

    def names(self) -> list[str]:
        names: list[str] = []
        while True:
            try:
                events = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            offset = 0
            while offset < len(events):
                _wd, _mask, _cookie, length = EVENT_HEADER.unpack_from(events, offset)
                offset += EVENT_HEADER.size
                names.append(events[offset : offset + length].rstrip(b"\0").decode())
                offset += length

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def watch(scratch_dir: Path) -> Iterator[DirectoryWatch]:
    directory_watch = DirectoryWatch(scratch_dir)
    try:
        yield directory_watch
    finally:
        directory_watch.close()


async def test_temporary_file_has_no_entry_in_dir_while_open(scratch_dir: Path) -> None:
    async with atf.TemporaryFile(dir=scratch_dir) as file:
        await file.write(b"data")
        await file.flush()
        assert os.listdir(scratch_dir) == []
    assert os.listdir(scratch_dir) == []


async def test_temporary_file_never_had_a_name(
    scratch_dir: Path, watch: DirectoryWatch
) -> None:
    async with atf.TemporaryFile(dir=scratch_dir) as file:
        await file.write(b"data")
        await file.flush()
    assert watch.names() == []
    # The watch does see a name that appears: the assertion above can fail.
    async with atf.NamedTemporaryFile(dir=scratch_dir) as named:
        assert watch.names() == [os.path.basename(named.name)]


async def test_rolled_over_spooled_file_never_had_a_name(
    scratch_dir: Path, watch: DirectoryWatch
) -> None:
    async with atf.SpooledTemporaryFile(max_size=1, dir=scratch_dir) as file:
        await file.write(b"rolls over")
        assert file.rolled
        assert os.listdir(scratch_dir) == []
    assert watch.names() == []


async def test_temporary_file_is_an_o_tmpfile_inode(scratch_dir: Path) -> None:
    async with atf.TemporaryFile(dir=scratch_dir) as file:
        fd = await file.fileno()
        status = os.fstat(fd)
        # The kernel names an O_TMPFILE inode "#<inode> (deleted)" in its dir.
        assert (
            os.readlink(f"/proc/self/fd/{fd}")
            == f"{scratch_dir}/#{status.st_ino} (deleted)"
        )
        assert status.st_nlink == 0
        assert stat.S_ISREG(status.st_mode)


async def test_named_temporary_file_entry_is_the_open_file(scratch_dir: Path) -> None:
    async with atf.NamedTemporaryFile(dir=scratch_dir) as file:
        fd = await file.fileno()
        assert os.readlink(f"/proc/self/fd/{fd}") == file.name
        assert os.path.samestat(os.fstat(fd), os.lstat(file.name))
        assert stat.S_ISREG(os.lstat(file.name).st_mode)


# -- descriptors are not inherited --------------------------------------------------

CHILD_LISTS_DESCRIPTORS = """
import json, os
seen = []
for name in os.listdir("/proc/self/fd"):
    try:
        status = os.stat(f"/proc/self/fd/{name}")
    except OSError:
        continue
    seen.append([status.st_dev, status.st_ino])
print(json.dumps(seen))
"""


def files_a_child_holds() -> set[tuple[int, int]]:
    """(device, inode) of each descriptor a child started with close_fds=False holds."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD_LISTS_DESCRIPTORS],
        close_fds=False,
        capture_output=True,
        check=True,
    )
    return {(device, inode) for device, inode in json.loads(result.stdout)}


async def assert_not_inherited(fd: int, control_path: Path) -> None:
    assert os.get_inheritable(fd) is False
    own = os.fstat(fd)
    control_fd = os.open(control_path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        os.set_inheritable(control_fd, True)
        control = os.fstat(control_fd)
        held = await anyio.to_thread.run_sync(files_a_child_holds)
    finally:
        os.close(control_fd)
        control_path.unlink()
    # The control proves the child would see an inherited descriptor.
    assert (control.st_dev, control.st_ino) in held
    assert (own.st_dev, own.st_ino) not in held


async def test_temporary_file_descriptor_is_not_inherited(
    scratch_dir: Path, tmp_path: Path
) -> None:
    async with atf.TemporaryFile(dir=scratch_dir) as file:
        await assert_not_inherited(await file.fileno(), tmp_path / "control")


async def test_named_temporary_file_descriptor_is_not_inherited(
    scratch_dir: Path, tmp_path: Path
) -> None:
    async with atf.NamedTemporaryFile(dir=scratch_dir) as file:
        await assert_not_inherited(await file.fileno(), tmp_path / "control")


async def test_spooled_file_descriptor_is_not_inherited(
    scratch_dir: Path, tmp_path: Path
) -> None:
    async with atf.SpooledTemporaryFile(dir=scratch_dir) as file:
        await file.write(b"data")
        await assert_not_inherited(await file.fileno(), tmp_path / "control")


async def test_mkstemp_descriptor_is_not_inherited(
    scratch_dir: Path, tmp_path: Path
) -> None:
    fd, path = await atf.mkstemp(dir=scratch_dir)
    try:
        await assert_not_inherited(fd, tmp_path / "control")
    finally:
        os.close(fd)
        os.unlink(path)


@pytest.mark.parametrize("mode", ["w+b", "w+", "wb", "rb", "w+b-unbuffered"])
async def test_descriptor_is_not_inheritable_in_every_mode(
    mode: str, scratch_dir: Path
) -> None:
    buffering = 0 if mode.endswith("-unbuffered") else -1
    mode = mode.removesuffix("-unbuffered")
    encoding = None if "b" in mode else "utf-8"
    async with atf.TemporaryFile(mode, buffering, encoding, dir=scratch_dir) as file:
        assert os.get_inheritable(await file.fileno()) is False
    async with atf.NamedTemporaryFile(
        mode, buffering, encoding, dir=scratch_dir
    ) as named:
        assert os.get_inheritable(await named.fileno()) is False


# -- names --------------------------------------------------------------------------


def name_pattern(prefix: str, suffix: str) -> str:
    return re.escape(prefix) + NAME_CHARACTERS + "{8}" + re.escape(suffix)


NAME_PARTS = [
    (None, None, "tmp", ""),
    ("upload-", ".bin", "upload-", ".bin"),
    ("", "", "", ""),
]


@pytest.mark.parametrize(("prefix", "suffix", "want_prefix", "want_suffix"), NAME_PARTS)
async def test_named_temporary_file_name_follows_stdlib_rule(
    prefix: str | None,
    suffix: str | None,
    want_prefix: str,
    want_suffix: str,
    scratch_dir: Path,
) -> None:
    async with atf.NamedTemporaryFile(
        prefix=prefix, suffix=suffix, dir=scratch_dir
    ) as file:
        assert os.path.dirname(file.name) == str(scratch_dir)
        assert re.fullmatch(
            name_pattern(want_prefix, want_suffix), os.path.basename(file.name)
        )


@pytest.mark.parametrize(("prefix", "suffix", "want_prefix", "want_suffix"), NAME_PARTS)
async def test_mkstemp_name_follows_stdlib_rule(
    prefix: str | None,
    suffix: str | None,
    want_prefix: str,
    want_suffix: str,
    scratch_dir: Path,
) -> None:
    fd, path = await atf.mkstemp(prefix=prefix, suffix=suffix, dir=scratch_dir)
    os.close(fd)
    os.unlink(path)
    assert os.path.dirname(path) == str(scratch_dir)
    assert re.fullmatch(name_pattern(want_prefix, want_suffix), os.path.basename(path))


@pytest.mark.parametrize(("prefix", "suffix", "want_prefix", "want_suffix"), NAME_PARTS)
async def test_mkdtemp_name_follows_stdlib_rule(
    prefix: str | None,
    suffix: str | None,
    want_prefix: str,
    want_suffix: str,
    scratch_dir: Path,
) -> None:
    path = await atf.mkdtemp(prefix=prefix, suffix=suffix, dir=scratch_dir)
    os.rmdir(path)
    assert os.path.dirname(path) == str(scratch_dir)
    assert re.fullmatch(name_pattern(want_prefix, want_suffix), os.path.basename(path))


@pytest.mark.parametrize(("prefix", "suffix", "want_prefix", "want_suffix"), NAME_PARTS)
async def test_temporary_directory_name_follows_stdlib_rule(
    prefix: str | None,
    suffix: str | None,
    want_prefix: str,
    want_suffix: str,
    scratch_dir: Path,
) -> None:
    async with atf.TemporaryDirectory(
        prefix=prefix, suffix=suffix, dir=scratch_dir
    ) as path:
        assert os.path.dirname(path) == str(scratch_dir)
        assert re.fullmatch(
            name_pattern(want_prefix, want_suffix), os.path.basename(path)
        )


async def test_bytes_name_follows_stdlib_rule(scratch_dir: Path) -> None:
    directory = os.fsencode(scratch_dir)
    async with atf.NamedTemporaryFile(
        prefix=b"p-", suffix=b".s", dir=directory
    ) as file:
        assert os.path.dirname(file.name) == directory
        assert re.fullmatch(rb"p-[a-z0-9_]{8}\.s", os.path.basename(file.name))


async def test_default_dir_is_gettempdir() -> None:
    async with atf.NamedTemporaryFile() as file:
        assert os.path.dirname(file.name) == tempfile.gettempdir()
        assert re.fullmatch(name_pattern("tmp", ""), os.path.basename(file.name))


async def test_names_are_random_not_sequential(scratch_dir: Path) -> None:
    stems: list[str] = []
    for _ in range(300):
        path = await atf.mkdtemp(dir=scratch_dir)
        os.rmdir(path)
        stems.append(os.path.basename(path)[3:])
    assert len(set(stems)) == len(stems)
    # 300 draws from 37 characters: every position shows most of the alphabet
    # (fewer than 20 distinct would happen with probability far below 1e-20).
    for position in range(8):
        assert len({stem[position] for stem in stems}) >= 20, position


# -- uniqueness under concurrency ---------------------------------------------------

CONCURRENT = 1000


@pytest.fixture
def enough_descriptors() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONCURRENT + 500
    if soft >= wanted:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_concurrent_named_files_get_distinct_names(
    scratch_dir: Path, enough_descriptors: None
) -> None:
    files: list[Any] = []

    async def create() -> None:
        files.append(await atf.NamedTemporaryFile(dir=scratch_dir))

    try:
        async with anyio.create_task_group() as group:
            for _ in range(CONCURRENT):
                group.start_soon(create)
        names = [os.path.basename(file.name) for file in files]
        assert len(set(names)) == CONCURRENT
        assert sorted(os.listdir(scratch_dir)) == sorted(names)
    finally:
        async with anyio.create_task_group() as group:
            for file in files:
                group.start_soon(file.aclose)
    assert os.listdir(scratch_dir) == []


async def test_concurrent_mkstemp_gets_distinct_files(
    scratch_dir: Path, enough_descriptors: None
) -> None:
    made: list[tuple[int, str]] = []

    async def create() -> None:
        made.append(await atf.mkstemp(dir=scratch_dir))

    try:
        async with anyio.create_task_group() as group:
            for _ in range(CONCURRENT):
                group.start_soon(create)
        paths = [path for _, path in made]
        inodes = {os.fstat(fd).st_ino for fd, _ in made}
        assert len(set(paths)) == len(inodes) == CONCURRENT
        assert sorted(os.listdir(scratch_dir)) == sorted(map(os.path.basename, paths))
    finally:
        for fd, path in made:
            os.close(fd)
            os.unlink(path)


async def test_concurrent_mkdtemp_gets_distinct_directories(scratch_dir: Path) -> None:
    paths: list[str] = []

    async def create() -> None:
        paths.append(await atf.mkdtemp(dir=scratch_dir))

    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENT):
            group.start_soon(create)
    assert len(set(paths)) == CONCURRENT
    assert sorted(os.listdir(scratch_dir)) == sorted(map(os.path.basename, paths))
    for path in paths:
        os.rmdir(path)


# -- existing paths are never opened, symlinks never followed ----------------------


async def test_existing_entries_are_never_reused(scratch_dir: Path) -> None:
    existing: dict[str, tuple[int, bytes]] = {}
    for index in range(200):
        path = scratch_dir / f"tmp{index:08d}"
        path.write_bytes(b"precious %d" % index)
        existing[path.name] = (path.stat().st_ino, path.read_bytes())
    files = [await atf.NamedTemporaryFile(dir=scratch_dir) for _ in range(200)]
    try:
        for file in files:
            await file.write(b"temporary")
            await file.flush()
        assert not {os.path.basename(file.name) for file in files} & existing.keys()
    finally:
        for file in files:
            await file.aclose()
    after = {
        name: ((scratch_dir / name).stat().st_ino, (scratch_dir / name).read_bytes())
        for name in os.listdir(scratch_dir)
    }
    assert after == existing


class PathPlanter:
    """Plants an entry at the exact path the package is about to create.

    Wraps ``os.open`` / ``os.mkdir`` (the system-call boundary, not the package's
    internals): for the first ``times`` creations inside ``directory``, ``plant``
    puts something at that path first, as an attacker racing the creation would.
    Secure creation must fail on it (O_EXCL, mkdir's EEXIST), leave it untouched,
    and retry under a new random name.
    """

    def __init__(
        self, directory: Path, plant: Callable[[str], None], times: int
    ) -> None:
        self.directory = str(directory)
        self.plant = plant
        self.remaining = times
        self.planted: list[str] = []
        self.lock = threading.Lock()

    def target(self, path: Any, dir_fd: int | None) -> str | None:
        text = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(text):
            text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
        if os.path.dirname(os.path.abspath(text)) != self.directory:
            return None
        with self.lock:
            if not self.remaining:
                return None
            self.remaining -= 1
            self.planted.append(os.path.abspath(text))
        return os.path.abspath(text)

    def wrap_open(self, real_open: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(real_open)
        def planting_open(
            path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None
        ) -> int:
            if flags & os.O_CREAT:
                target = self.target(path, dir_fd)
                if target is not None:
                    self.plant(target)
            return real_open(path, flags, mode, dir_fd=dir_fd)

        return planting_open

    def wrap_mkdir(self, real_mkdir: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(real_mkdir)
        def planting_mkdir(
            path: Any, mode: int = 0o777, *, dir_fd: int | None = None
        ) -> None:
            target = self.target(path, dir_fd)
            if target is not None:
                self.plant(target)
            real_mkdir(path, mode, dir_fd=dir_fd)

        return planting_mkdir


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside ``scratch_dir`` that planted symlinks point at."""
    path = tmp_path / "victim"
    path.write_bytes(b"do not touch")
    path.chmod(0o644)
    return path


@pytest.fixture
def victim_directory(tmp_path: Path) -> Path:
    """A directory outside ``scratch_dir`` that planted symlinks point at."""
    path = tmp_path / "victim-directory"
    path.mkdir()
    path.chmod(0o755)
    (path / "inside").write_bytes(b"do not touch")
    return path


def plant_symlink_to(target: Path) -> Callable[[str], None]:
    return lambda path: os.symlink(target, path)


def plant_file(path: str) -> None:
    with open(path, "xb") as planted:
        planted.write(b"planted")


def assert_victim_untouched(victim: Path) -> None:
    assert victim.read_bytes() == b"do not touch"
    assert permission_bits(victim.stat()) == 0o644


def assert_symlinks_still_planted(
    planter: PathPlanter, target: Path, scratch_dir: Path
) -> None:
    assert len(planter.planted) == 3
    assert sorted(os.listdir(scratch_dir)) == sorted(
        map(os.path.basename, planter.planted)
    )
    for path in planter.planted:
        assert os.readlink(path) == str(target)


async def test_named_file_creation_never_follows_planted_symlink(
    scratch_dir: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planter = PathPlanter(scratch_dir, plant_symlink_to(victim), times=3)
    monkeypatch.setattr(os, "open", planter.wrap_open(os.open))
    async with atf.NamedTemporaryFile(dir=scratch_dir) as file:
        await file.write(b"temporary data")
        await file.flush()
        assert file.name not in planter.planted
        assert stat.S_ISREG(os.lstat(file.name).st_mode)
        assert permission_bits(os.lstat(file.name)) == FILE_MODE
    monkeypatch.undo()
    assert_victim_untouched(victim)
    assert_symlinks_still_planted(planter, victim, scratch_dir)


async def test_mkstemp_never_follows_planted_symlink(
    scratch_dir: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planter = PathPlanter(scratch_dir, plant_symlink_to(victim), times=3)
    monkeypatch.setattr(os, "open", planter.wrap_open(os.open))
    fd, path = await atf.mkstemp(dir=scratch_dir)
    monkeypatch.undo()
    try:
        os.write(fd, b"temporary data")
        assert path not in planter.planted
        assert stat.S_ISREG(os.lstat(path).st_mode)
        assert_victim_untouched(victim)
    finally:
        os.close(fd)
        os.unlink(path)
    assert_symlinks_still_planted(planter, victim, scratch_dir)


async def test_named_file_creation_never_opens_planted_file(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planter = PathPlanter(scratch_dir, plant_file, times=3)
    monkeypatch.setattr(os, "open", planter.wrap_open(os.open))
    async with atf.NamedTemporaryFile(dir=scratch_dir) as file:
        await file.write(b"temporary data")
        await file.flush()
        assert file.name not in planter.planted
    monkeypatch.undo()
    assert sorted(os.listdir(scratch_dir)) == sorted(
        map(os.path.basename, planter.planted)
    )
    for path in planter.planted:
        with open(path, "rb") as planted:
            assert planted.read() == b"planted"


async def test_mkdtemp_never_follows_planted_symlink(
    scratch_dir: Path, victim_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planter = PathPlanter(scratch_dir, plant_symlink_to(victim_directory), times=3)
    monkeypatch.setattr(os, "mkdir", planter.wrap_mkdir(os.mkdir))
    path = await atf.mkdtemp(dir=scratch_dir)
    monkeypatch.undo()
    assert path not in planter.planted
    assert stat.S_ISDIR(os.lstat(path).st_mode)
    assert permission_bits(os.lstat(path)) == DIRECTORY_MODE
    os.rmdir(path)
    assert permission_bits(victim_directory.stat()) == 0o755
    assert os.listdir(victim_directory) == ["inside"]
    assert_symlinks_still_planted(planter, victim_directory, scratch_dir)


async def test_temporary_directory_never_follows_planted_symlink(
    scratch_dir: Path, victim_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planter = PathPlanter(scratch_dir, plant_symlink_to(victim_directory), times=3)
    monkeypatch.setattr(os, "mkdir", planter.wrap_mkdir(os.mkdir))
    async with atf.TemporaryDirectory(dir=scratch_dir) as path:
        monkeypatch.undo()
        assert path not in planter.planted
        assert stat.S_ISDIR(os.lstat(path).st_mode)
        Path(path, "made-inside").write_bytes(b"temporary")
    assert permission_bits(victim_directory.stat()) == 0o755
    assert os.listdir(victim_directory) == ["inside"]
    assert (victim_directory / "inside").read_bytes() == b"do not touch"
    assert_symlinks_still_planted(planter, victim_directory, scratch_dir)


# -- the system calls themselves (strace) ------------------------------------------

CHILD_CREATES = """
import sys, anyio
import anyio_tempfile as atf

kind, directory, backend, uvloop = sys.argv[1:]

async def main() -> None:
    if kind == "TemporaryFile":
        async with atf.TemporaryFile(dir=directory) as file:
            await file.write(b"x")
    elif kind == "NamedTemporaryFile":
        async with atf.NamedTemporaryFile(dir=directory) as file:
            await file.write(b"x")
    elif kind == "SpooledTemporaryFile":
        async with atf.SpooledTemporaryFile(max_size=1, dir=directory) as file:
            await file.write(b"rolls over")
    elif kind == "mkstemp":
        import os
        fd, path = await atf.mkstemp(dir=directory)
        os.close(fd)
        os.unlink(path)
    elif kind == "mkdtemp":
        import os
        os.rmdir(await atf.mkdtemp(dir=directory))
    elif kind == "TemporaryDirectory":
        async with atf.TemporaryDirectory(dir=directory):
            pass

options = {"use_uvloop": True} if uvloop == "1" else {}
anyio.run(main, backend=backend, backend_options=options)
"""

OPEN_CALL = re.compile(
    r'\bopenat\((?P<dirfd>[^,]*), "(?P<path>[^"]*)", (?P<flags>[A-Z_0-9|x]+)'
    r"(?:, (?P<mode>0[0-7]*))?"
)
MKDIR_CALL = re.compile(
    r'\bmkdir(?:at)?\((?:[^,]*, )?"(?P<path>[^"]*)", (?P<mode>0[0-7]*)'
)


def traced_system_calls(
    kind: str, directory: Path, backend: tuple[str, dict[str, Any]], trace: Path
) -> list[str]:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    name, options = backend
    command = [
        "strace", "-f", "-qq", "-e", "trace=openat,mkdir,mkdirat", "-o", str(trace),
        sys.executable, "-c", CHILD_CREATES,
        kind, str(directory), name, "1" if options.get("use_uvloop") else "0",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    result = subprocess.run(command, capture_output=True, env=env, check=False)
    if result.returncode != 0 and b"ptrace" in result.stderr:
        pytest.skip(
            f"strace cannot trace here: {result.stderr.decode(errors='replace')}"
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    lines = trace.read_text().splitlines()
    trace.unlink()
    return [line for line in lines if str(directory) in line]


def flags_of(match: re.Match[str]) -> set[str]:
    return set(match["flags"].split("|"))


@pytest.mark.parametrize("kind", ["NamedTemporaryFile", "mkstemp"])
async def test_named_creation_uses_excl_nofollow_cloexec_and_0600(
    kind: str,
    scratch_dir: Path,
    tmp_path: Path,
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    lines = await anyio.to_thread.run_sync(
        traced_system_calls, kind, scratch_dir, anyio_backend, tmp_path / "trace"
    )
    creations = [
        m for m in map(OPEN_CALL.search, lines) if m and "O_CREAT" in flags_of(m)
    ]
    assert len(creations) == 1, lines
    assert {"O_CREAT", "O_EXCL", "O_NOFOLLOW", "O_CLOEXEC"} <= flags_of(creations[0])
    assert creations[0]["mode"] == "0600"
    assert os.path.dirname(creations[0]["path"]) == str(scratch_dir)


@pytest.mark.parametrize("kind", ["TemporaryFile", "SpooledTemporaryFile"])
async def test_unnamed_creation_uses_o_tmpfile_nofollow_cloexec_and_0600(
    kind: str,
    scratch_dir: Path,
    tmp_path: Path,
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    lines = await anyio.to_thread.run_sync(
        traced_system_calls, kind, scratch_dir, anyio_backend, tmp_path / "trace"
    )
    opens = [m for m in map(OPEN_CALL.search, lines) if m]
    assert len(opens) == 1, lines
    assert opens[0]["path"] == str(scratch_dir)
    assert {"O_TMPFILE", "O_NOFOLLOW", "O_CLOEXEC"} <= flags_of(opens[0])
    assert opens[0]["mode"] == "0600"


@pytest.mark.parametrize("kind", ["mkdtemp", "TemporaryDirectory"])
async def test_directory_creation_is_one_mkdir_with_0700(
    kind: str,
    scratch_dir: Path,
    tmp_path: Path,
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    lines = await anyio.to_thread.run_sync(
        traced_system_calls, kind, scratch_dir, anyio_backend, tmp_path / "trace"
    )
    mkdirs = [m for m in map(MKDIR_CALL.search, lines) if m]
    assert len(mkdirs) == 1, lines
    assert mkdirs[0]["mode"] == "0700"
    assert os.path.dirname(mkdirs[0]["path"]) == str(scratch_dir)


@pytest.mark.parametrize(
    "kind",
    [
        "NamedTemporaryFile",
        "mkstemp",
        "TemporaryFile",
        "SpooledTemporaryFile",
        "TemporaryDirectory",
    ],
)
async def test_no_path_in_dir_is_opened_following_symlinks(
    kind: str,
    scratch_dir: Path,
    tmp_path: Path,
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    lines = await anyio.to_thread.run_sync(
        traced_system_calls, kind, scratch_dir, anyio_backend, tmp_path / "trace"
    )
    opens = [m for m in map(OPEN_CALL.search, lines) if m]
    following = [m.group(0) for m in opens if "O_NOFOLLOW" not in flags_of(m)]
    assert following == []


async def test_creation_leaves_no_descriptor_behind(scratch_dir: Path) -> None:
    before = open_descriptors()
    async with atf.NamedTemporaryFile(dir=scratch_dir):
        pass
    async with atf.TemporaryFile(dir=scratch_dir):
        pass
    async with atf.TemporaryDirectory(dir=scratch_dir):
        pass
    assert open_descriptors() - before == set()
