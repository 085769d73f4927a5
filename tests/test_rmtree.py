"""The blocking tree removal behind ``TemporaryDirectory.cleanup()``.

Plain synchronous tests. Root bypasses permission checks, so the tests about
read-only entries run twice over: in this process with the permission errors
injected (recording which inodes get their mode changed), and in a child process
that has dropped root for ``nobody``, where the kernel refuses for real.

Failures are injected by patching functions of ``os``: ``_rmtree`` looks them up
there at each call.
"""

from __future__ import annotations

import errno
import inspect
import json
import os
import resource
import shutil
import stat
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import open_descriptors

from anyio_tempfile._rmtree import rmtree

NOBODY = 65534


# -- helpers ----------------------------------------------------------------------


def listing(root: Path) -> list[str]:
    """Every entry under ``root``, relative to it, sorted; symlinks not followed."""
    found: list[str] = []
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


def modes(root: Path) -> dict[str, int]:
    """The ``lstat`` mode of ``root`` and of everything under it."""
    result = {".": os.lstat(root).st_mode}
    for entry in listing(root):
        result[entry] = os.lstat(root / entry).st_mode
    return result


def identity_of(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def identities(root: Path) -> set[tuple[int, int]]:
    """The identity of ``root`` and of everything under it, symlinks themselves."""
    return {identity_of(os.lstat(root))} | {
        identity_of(os.lstat(root / entry)) for entry in listing(root)
    }


def make_tree(root: Path) -> None:
    """A small tree: nested directories, files, an empty directory, a FIFO."""
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "top.txt").write_text("top")
    (root / "a" / "one.txt").write_text("one")
    (root / "a" / "b" / "two.txt").write_text("two")
    (root / "a" / "b" / "c" / "three.txt").write_text("three")
    os.mkfifo(root / "a" / "fifo")


def make_outside(root: Path) -> Path:
    """A directory with contents that no removal may touch; returns it."""
    outside = root / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "precious.txt").write_text("precious")
    (outside / "inner" / "deep.txt").write_text("deep")
    return outside


def record_mode_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[int, int]]:
    """Patch chmod and fchmod; the list gets the identity of every inode changed."""
    changed: list[tuple[int, int]] = []
    real_chmod, real_fchmod = os.chmod, os.fchmod

    def chmod(path: Any, mode: int, **kwargs: Any) -> None:
        # What a chmod by path changes is the inode the path leads to.
        status = os.stat(path, **kwargs)
        changed.append(identity_of(status))
        real_chmod(path, mode, **kwargs)

    def fchmod(fd: int, mode: int) -> None:
        status = os.fstat(fd)
        changed.append(identity_of(status))
        real_fchmod(fd, mode)

    monkeypatch.setattr(os, "chmod", chmod)
    monkeypatch.setattr(os, "fchmod", fchmod)
    return changed


def refuse_once(
    monkeypatch: pytest.MonkeyPatch, function_name: str, names: set[str]
) -> None:
    """Make ``os.<function_name>`` raise EACCES the first time it is given each of
    ``names`` (what a read-only directory does to a process that is not root)."""
    real = getattr(os, function_name)
    refused: set[str] = set()

    def refusing(path: Any, *args: Any, **kwargs: Any) -> Any:
        flags = args[0] if args else kwargs.get("flags", 0)
        is_path_open = function_name == "open" and flags & getattr(os, "O_PATH", 0)
        if path in names and path not in refused and not is_path_open:
            refused.add(path)
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, function_name, refusing)


def fail_for(
    monkeypatch: pytest.MonkeyPatch, function_name: str, name: str, code: int
) -> None:
    """Make ``os.<function_name>`` always fail with ``code`` for the entry ``name``."""
    real = getattr(os, function_name)

    def failing(path: Any, *args: Any, **kwargs: Any) -> Any:
        if path == name:
            raise OSError(code, os.strerror(code), path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, function_name, failing)


class ScandirResult:
    """What ``os.scandir`` returns, for a list of entries taken already."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self.entries = entries

    def __enter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)

    def __exit__(self, *exc_info: object) -> None:
        pass


# -- what is removed, what is left ------------------------------------------------


def test_removes_the_whole_tree(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    assert listing(tree) == [
        "a",
        "a/b",
        "a/b/c",
        "a/b/c/three.txt",
        "a/b/two.txt",
        "a/fifo",
        "a/one.txt",
        "empty",
        "top.txt",
    ]
    before = open_descriptors()
    rmtree(str(tree))
    assert open_descriptors() == before
    assert os.listdir(tmp_path) == []


def test_removes_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    rmtree(str(tmp_path / "tree"))
    assert os.listdir(tmp_path) == []


def test_missing_path_is_no_error(tmp_path: Path) -> None:
    rmtree(str(tmp_path / "missing"))
    rmtree(str(tmp_path / "missing" / "parent"))
    assert os.listdir(tmp_path) == []


def test_bytes_path(tmp_path: Path) -> None:
    tree = os.fsencode(tmp_path / "tree")
    os.makedirs(os.path.join(tree, b"sub", b"\xff-not-utf-8"))
    with open(os.path.join(tree, b"sub", b"\xfe-file"), "wb") as file:
        file.write(b"data")
    rmtree(tree)
    assert os.listdir(tmp_path) == []


def test_bytes_path_errors_carry_bytes_filenames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    fail_for(monkeypatch, "unlink", "two.txt", errno.EBUSY)
    with pytest.raises(OSError, match="Device or resource busy") as raised:
        rmtree(os.fsencode(tree))
    assert raised.value.errno == errno.EBUSY
    assert raised.value.filename == os.fsencode(tree / "a" / "b" / "two.txt")


def test_accepts_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path / "tree")
    monkeypatch.chdir(tmp_path)
    rmtree("tree")
    assert os.listdir(tmp_path) == []


# -- symlinks are unlinked, never followed ----------------------------------------


def test_symlink_to_outside_directory_is_unlinked_and_target_untouched(
    tmp_path: Path,
) -> None:
    outside = make_outside(tmp_path)
    tree = tmp_path / "tree"
    make_tree(tree)
    (tree / "a" / "to-outside").symlink_to(outside, target_is_directory=True)
    (tree / "to-inner").symlink_to(outside / "inner", target_is_directory=True)
    outside_listing, outside_modes = listing(outside), modes(outside)
    rmtree(str(tree))
    assert os.listdir(tmp_path) == ["outside"]
    assert (
        listing(outside)
        == outside_listing
        == ["inner", "inner/deep.txt", "precious.txt"]
    )
    assert modes(outside) == outside_modes


def test_symlink_to_outside_file_is_unlinked_and_target_untouched(
    tmp_path: Path,
) -> None:
    outside = make_outside(tmp_path)
    tree = tmp_path / "tree"
    make_tree(tree)
    (tree / "a" / "b" / "to-file").symlink_to(outside / "precious.txt")
    outside_modes = modes(outside)
    rmtree(str(tree))
    assert os.listdir(tmp_path) == ["outside"]
    assert (outside / "precious.txt").read_text() == "precious"
    assert modes(outside) == outside_modes


def test_dangling_and_looping_symlinks_are_unlinked(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "dangling").symlink_to(tmp_path / "nowhere")
    (tree / "loop").symlink_to(tree / "loop")
    (tree / "up").symlink_to(tmp_path, target_is_directory=True)
    rmtree(str(tree))
    assert os.listdir(tmp_path) == []


def test_top_path_that_is_a_symlink_is_unlinked_and_target_untouched(
    tmp_path: Path,
) -> None:
    outside = make_outside(tmp_path)
    (tmp_path / "tree").symlink_to(outside, target_is_directory=True)
    outside_listing, outside_modes = listing(outside), modes(outside)
    rmtree(str(tmp_path / "tree"))
    assert os.listdir(tmp_path) == ["outside"]
    assert listing(outside) == outside_listing
    assert modes(outside) == outside_modes


@pytest.mark.parametrize("path_type", [str, os.fsencode])
def test_top_path_with_trailing_slash_that_is_a_symlink_is_not_followed(
    tmp_path: Path, path_type: Callable[[str], str | bytes]
) -> None:
    outside = make_outside(tmp_path)
    (tmp_path / "tree").symlink_to(outside, target_is_directory=True)
    outside_listing, outside_modes = listing(outside), modes(outside)
    rmtree(path_type(f"{tmp_path}/tree//"))
    assert os.listdir(tmp_path) == ["outside"]
    assert listing(outside) == outside_listing
    assert modes(outside) == outside_modes


def test_top_path_with_trailing_slash(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree")
    rmtree(f"{tmp_path}/tree/")
    assert os.listdir(tmp_path) == []


def test_top_path_that_is_a_dangling_symlink_is_unlinked(tmp_path: Path) -> None:
    (tmp_path / "tree").symlink_to(tmp_path / "nowhere")
    rmtree(str(tmp_path / "tree"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ignore_errors", [False, True])
def test_top_path_that_is_a_file_is_left_alone(
    tmp_path: Path, ignore_errors: bool
) -> None:
    (tmp_path / "tree").write_text("not a directory")
    if ignore_errors:
        rmtree(str(tmp_path / "tree"), ignore_errors=True)
    else:
        with pytest.raises(NotADirectoryError) as raised:
            rmtree(str(tmp_path / "tree"))
        assert raised.value.errno == errno.ENOTDIR
        assert raised.value.filename == str(tmp_path / "tree")
    assert (tmp_path / "tree").read_text() == "not a directory"


def test_directory_swapped_for_a_symlink_after_listing_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = make_outside(tmp_path)
    tree = tmp_path / "tree"
    make_tree(tree)
    outside_listing, outside_modes = listing(outside), modes(outside)
    real_scandir = os.scandir

    def scandir_then_swap(fd: Any) -> Any:
        if not isinstance(fd, int):  # os.walk() in listing()
            return real_scandir(fd)
        with real_scandir(fd) as scanner:
            entries = list(scanner)
        if not (tree / "a").is_symlink():
            # The race that path-based removal loses: "a" was listed as a
            # directory, and is a symlink to the outside by the time it is opened.
            os.rename(tree / "a", tmp_path / "moved")
            (tree / "a").symlink_to(outside, target_is_directory=True)
        return ScandirResult(entries)

    monkeypatch.setattr(os, "scandir", scandir_then_swap)
    rmtree(str(tree))
    assert sorted(os.listdir(tmp_path)) == ["moved", "outside"]
    assert listing(outside) == outside_listing
    assert modes(outside) == outside_modes


def test_directory_moved_out_of_the_tree_midway_does_not_take_us_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "bystander.txt").write_text("keep")
    b_identity = identity_of(os.lstat(tree / "a" / "b"))
    real_scandir = os.scandir

    def scandir_moving_b(fd: Any) -> Any:
        if isinstance(fd, int) and identity_of(os.fstat(fd)) == b_identity:
            # Someone moves "b" out while we are inside it: its ".." is no longer
            # "a", so going back up must not land in "elsewhere".
            os.rename(tree / "a" / "b", tmp_path / "elsewhere" / "b")
        return real_scandir(fd)

    monkeypatch.setattr(os, "scandir", scandir_moving_b)
    before = open_descriptors()
    rmtree(str(tree))
    assert open_descriptors() == before
    assert os.listdir(tmp_path) == ["elsewhere"]
    # What was inside "b" when we entered it is gone, like shutil.rmtree would do;
    # the directory itself and its new neighbour stay.
    assert listing(tmp_path / "elsewhere") == ["b", "bystander.txt"]


# -- vanishing entries ------------------------------------------------------------


def test_entries_vanishing_midway_are_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    real_unlink, real_rmdir, real_open = os.unlink, os.rmdir, os.open

    def unlink_twice(path: Any, *, dir_fd: int | None = None) -> None:
        real_unlink(path, dir_fd=dir_fd)  # someone else was faster
        real_unlink(path, dir_fd=dir_fd)

    def rmdir_twice(path: Any, *, dir_fd: int | None = None) -> None:
        real_rmdir(path, dir_fd=dir_fd)
        real_rmdir(path, dir_fd=dir_fd)

    def open_after_removal(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if path == "empty":
            real_rmdir(path, dir_fd=kwargs["dir_fd"])
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink_twice)
    monkeypatch.setattr(os, "rmdir", rmdir_twice)
    monkeypatch.setattr(os, "open", open_after_removal)
    before = open_descriptors()
    rmtree(str(tree))
    assert open_descriptors() == before
    assert os.listdir(tmp_path) == []


def test_top_vanishing_before_its_removal_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    real_rmdir = os.rmdir

    def rmdir_twice(path: Any, *, dir_fd: int | None = None) -> None:
        real_rmdir(path, dir_fd=dir_fd)
        real_rmdir(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "rmdir", rmdir_twice)
    rmtree(str(tree))
    assert os.listdir(tmp_path) == []


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function_name", "name", "code", "failed_path"),
    [
        ("unlink", "two.txt", errno.EACCES, "a/b/two.txt"),
        ("unlink", "top.txt", errno.EPERM, "top.txt"),
        ("rmdir", "b", errno.EBUSY, "a/b"),
    ],
)
def test_first_error_is_raised_with_errno_and_full_filename(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    function_name: str,
    name: str,
    code: int,
    failed_path: str,
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    fail_for(monkeypatch, function_name, name, code)
    before = open_descriptors()
    with pytest.raises(OSError, match=os.strerror(code)) as raised:
        rmtree(str(tree))
    assert open_descriptors() == before
    assert raised.value.errno == code
    assert raised.value.filename == str(tree / failed_path)
    assert (tree / failed_path).exists()


@pytest.mark.parametrize(
    ("function_name", "name", "code", "left"),
    [
        ("unlink", "two.txt", errno.EACCES, ["a", "a/b", "a/b/two.txt"]),
        ("rmdir", "b", errno.EBUSY, ["a", "a/b"]),
        ("rmdir", "empty", errno.EBUSY, ["empty"]),
    ],
)
def test_ignore_errors_removes_everything_else(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    function_name: str,
    name: str,
    code: int,
    left: list[str],
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    fail_for(monkeypatch, function_name, name, code)
    before = open_descriptors()
    rmtree(str(tree), ignore_errors=True)
    assert open_descriptors() == before
    assert os.listdir(tmp_path) == ["tree"]
    assert listing(tree) == left


def test_failing_open_of_a_subdirectory_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    fail_for(monkeypatch, "open", "b", errno.EIO)
    with pytest.raises(OSError, match="Input/output error") as raised:
        rmtree(str(tree))
    assert raised.value.filename == str(tree / "a" / "b")
    rmtree(str(tree), ignore_errors=True)
    assert listing(tree) == ["a", "a/b", "a/b/c", "a/b/c/three.txt", "a/b/two.txt"]


# -- permission fixes, in this process (injected refusals) ------------------------


def test_read_only_directory_is_made_writable_through_its_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    b = os.lstat(tree / "a" / "b")
    in_tree = identities(tree)
    changed = record_mode_changes(monkeypatch)
    # Refused once each, as entries of a read-only directory "b" are.
    refuse_once(monkeypatch, "unlink", {"two.txt"})
    refuse_once(monkeypatch, "rmdir", {"c"})
    rmtree(str(tree))
    assert os.listdir(tmp_path) == []
    assert changed == [identity_of(b)] * 2
    assert set(changed) <= in_tree


@pytest.mark.skipif(sys.platform != "linux", reason="O_PATH and /proc are Linux's")
def test_unreadable_directory_is_opened_through_an_o_path_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    b = os.lstat(tree / "a" / "b")
    in_tree = identities(tree)
    changed = record_mode_changes(monkeypatch)
    # Refused for reading twice, as a mode 0o000 directory is, before and after
    # its parent's mode is fixed.
    refuse_once(monkeypatch, "open", {"b"})
    refuse_once(monkeypatch, "open", {"b"})
    before = open_descriptors()
    rmtree(str(tree))
    assert open_descriptors() == before
    assert os.listdir(tmp_path) == []
    assert set(changed) <= in_tree
    assert identity_of(b) in changed


def test_cve_2023_6597_symlink_targets_keep_their_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = make_outside(tmp_path)
    os.chmod(outside / "precious.txt", 0o400)
    os.chmod(outside / "inner", 0o500)
    tree = tmp_path / "tree"
    make_tree(tree)
    (tree / "a" / "to-file").symlink_to(outside / "precious.txt")
    (tree / "a" / "to-dir").symlink_to(outside / "inner", target_is_directory=True)
    outside_modes = modes(outside)
    in_tree = identities(tree)
    changed = record_mode_changes(monkeypatch)
    # Unlinking the symlinks is refused once, as in a read-only directory: that
    # is where the standard library used to chmod the path, through the symlink.
    refuse_once(monkeypatch, "unlink", {"to-file", "to-dir"})
    rmtree(str(tree))
    assert os.listdir(tmp_path) == ["outside"]
    assert modes(outside) == outside_modes
    assert changed
    assert set(changed) <= in_tree


def test_parent_of_the_top_is_never_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    changed = record_mode_changes(monkeypatch)
    fail_for(monkeypatch, "rmdir", str(tree), errno.EACCES)
    with pytest.raises(PermissionError):
        rmtree(str(tree))
    assert changed == []
    assert os.listdir(tmp_path) == ["tree"]


# -- size and depth ---------------------------------------------------------------


def test_directory_of_2000_files(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for number in range(2000):
        (tree / f"file-{number:04}").write_bytes(b"x")
    assert len(os.listdir(tree)) == 2000
    before = open_descriptors()
    rmtree(str(tree))
    assert open_descriptors() == before
    assert os.listdir(tmp_path) == []


@pytest.fixture
def deep_tree(tmp_path: Path) -> Path:
    """A tree 500 directories deep, with a file at every level."""
    tree = tmp_path / "tree"
    directory = tree
    for level in range(500):
        directory = directory / "d"
        directory.mkdir(parents=level == 0)
        (directory / "f").write_text(str(level))
    return tree


def test_deep_tree_needs_no_recursion(tmp_path: Path, deep_tree: Path) -> None:
    limit = sys.getrecursionlimit()
    # Fewer frames left than the tree has levels: a recursive walk would fail.
    sys.setrecursionlimit(len(inspect.stack(0)) + 50)
    try:
        rmtree(str(deep_tree))
    finally:
        sys.setrecursionlimit(limit)
    assert os.listdir(tmp_path) == []


def test_deep_tree_holds_a_few_descriptors_at_most(
    tmp_path: Path, deep_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live: set[int] = set()
    peak = 0
    real_open, real_dup, real_close = os.open, os.dup, os.close

    def track(fd: int) -> int:
        nonlocal peak
        live.add(fd)
        peak = max(peak, len(live))
        return fd

    def close(fd: int) -> None:
        live.discard(fd)
        real_close(fd)

    monkeypatch.setattr(os, "open", lambda *a, **k: track(real_open(*a, **k)))
    monkeypatch.setattr(os, "dup", lambda fd: track(real_dup(fd)))
    monkeypatch.setattr(os, "close", close)
    rmtree(str(deep_tree))
    assert os.listdir(tmp_path) == []
    assert live == set()
    assert peak <= 3


def test_deep_tree_is_removed_under_a_tight_descriptor_limit(
    tmp_path: Path, deep_tree: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Room for a dozen more descriptors: shutil.rmtree, which holds one per level,
    # fails here with EMFILE.
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(open_descriptors()) + 12, hard))
    try:
        rmtree(str(deep_tree))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert os.listdir(tmp_path) == []


# -- permission fixes, for real: a child process that is not root ----------------


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    """A directory owned by ``nobody``, reachable by ``nobody`` (pytest's tmp_path
    is not: its parents are mode 0o700)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("drops privileges the Linux way")
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges to nobody (uid 65534)")
    base = Path(tempfile.mkdtemp(prefix="rmtree-nobody-"))
    try:
        base.chmod(0o755)
        home = base / "home"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        yield home
    finally:
        shutil.rmtree(base)  # as root: modes left behind do not stop it


def give_to_nobody(root: Path) -> None:
    os.chown(root, NOBODY, NOBODY)
    for entry in listing(root):
        os.chown(root / entry, NOBODY, NOBODY, follow_symlinks=False)


def as_nobody(action: Callable[[], None]) -> dict[str, Any]:
    """Run ``action`` in a forked child that is uid and gid ``nobody``; return
    ``{"error": [type, errno, filename] | None, "leaked": [descriptors]}``."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns about fork() when other threads exist (a backend's
        # idle worker threads, say). The child only makes system calls and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        exit_code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            before = open_descriptors()
            outcome: dict[str, Any] = {"error": None}
            try:
                action()
            except OSError as error:
                filename = error.filename
                outcome["error"] = [
                    type(error).__name__,
                    error.errno,
                    None if filename is None else os.fsdecode(filename),
                ]
            outcome["leaked"] = sorted(open_descriptors() - before)
            os.write(write_end, json.dumps(outcome).encode())
            exit_code = 0
        except BaseException:
            os.write(write_end, traceback.format_exc().encode())
        finally:
            os._exit(exit_code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        report = reader.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report
    outcome = json.loads(report)
    assert outcome["leaked"] == []
    return outcome


def test_nobody_is_really_refused(nobody_home: Path) -> None:
    # Proof that the tests below are meaningful: without the fixes, nobody
    # cannot even list a mode 0o000 directory of its own.
    locked = nobody_home / "locked"
    locked.mkdir()
    give_to_nobody(locked)
    locked.chmod(0o000)

    def list_locked() -> None:
        os.listdir(locked)

    outcome = as_nobody(list_locked)
    assert outcome["error"] == ["PermissionError", errno.EACCES, str(locked)]


@pytest.mark.parametrize(
    "mode", [0o000, 0o100, 0o200, 0o300, 0o400, 0o500, 0o600], ids=oct
)
def test_nested_read_only_directories_are_removed(nobody_home: Path, mode: int) -> None:
    tree = nobody_home / "tree"
    make_tree(tree)
    (tree / "a" / "b" / "empty").mkdir()
    give_to_nobody(tree)
    for relative in ["a/b/empty", "a/b/c", "a/b", "a", "empty"]:
        (tree / relative).chmod(mode)
    outcome = as_nobody(lambda: rmtree(str(tree)))
    assert outcome["error"] is None
    assert os.listdir(nobody_home) == []


@pytest.mark.parametrize("mode", [0o000, 0o100, 0o500, 0o600], ids=oct)
def test_read_only_top_directory_is_removed(nobody_home: Path, mode: int) -> None:
    tree = nobody_home / "tree"
    make_tree(tree)
    give_to_nobody(tree)
    tree.chmod(mode)
    outcome = as_nobody(lambda: rmtree(str(tree)))
    assert outcome["error"] is None
    assert os.listdir(nobody_home) == []


def test_cve_2023_6597_for_real_symlink_targets_keep_their_mode(
    nobody_home: Path,
) -> None:
    outside = make_outside(nobody_home)
    tree = nobody_home / "tree"
    make_tree(tree)
    # Each symlink alone in a read-only directory, so that unlinking it is the
    # first thing refused there: that is when the standard library used to chmod
    # the entry's path, through the symlink. One more in a mode 0o000 directory.
    targets = {
        "to-file": outside / "precious.txt",
        "to-dir": outside / "inner",
        "to-outside": outside,
    }
    for name, target in targets.items():
        (tree / f"read-only-{name}").mkdir()
        (tree / f"read-only-{name}" / name).symlink_to(target)
    (tree / "locked").mkdir()
    (tree / "locked" / "to-file").symlink_to(outside / "precious.txt")
    give_to_nobody(tree)
    give_to_nobody(outside)  # so that a chmod through a symlink would succeed
    (outside / "precious.txt").chmod(0o400)
    (outside / "inner").chmod(0o000)
    for name in targets:
        (tree / f"read-only-{name}").chmod(0o500)
    (tree / "locked").chmod(0o000)
    outside_listing, outside_modes = listing(outside), modes(outside)
    outcome = as_nobody(lambda: rmtree(str(tree)))
    assert outcome["error"] is None
    assert os.listdir(nobody_home) == ["outside"]
    assert listing(outside) == outside_listing
    assert modes(outside) == outside_modes


def test_entry_we_may_not_remove_is_reported_for_real(nobody_home: Path) -> None:
    tree = nobody_home / "tree"
    make_tree(tree)
    give_to_nobody(tree)
    (tree / "rooted").mkdir()  # root's: nobody cannot change its mode
    (tree / "rooted").chmod(0o755)
    (tree / "rooted" / "file").write_text("root's")
    outcome = as_nobody(lambda: rmtree(str(tree)))
    assert outcome["error"] == [
        "PermissionError",
        errno.EACCES,
        str(tree / "rooted" / "file"),
    ]
    assert stat.S_IMODE(os.stat(tree / "rooted").st_mode) == 0o755


def test_ignore_errors_for_real_removes_everything_nobody_may(
    nobody_home: Path,
) -> None:
    tree = nobody_home / "tree"
    make_tree(tree)
    give_to_nobody(tree)
    (tree / "a").chmod(0o500)
    (tree / "rooted").mkdir()
    (tree / "rooted" / "file").write_text("root's")
    outcome = as_nobody(lambda: rmtree(str(tree), ignore_errors=True))
    assert outcome["error"] is None
    assert listing(tree) == ["rooted", "rooted/file"]
