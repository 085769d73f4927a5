"""TemporaryDirectory, mkdtemp and the gettemp* functions.

The tests run as root, which ignores permission bits: a read-only entry is no
obstacle to root, so removing one proves nothing, and a cleanup that follows a
symlink would only show by damage. The tests that need permission bits to matter
therefore run their scenario in a child process that keeps uid 0 but loses the
capabilities that bypass permission checks (``CAP_DAC_OVERRIDE``,
``CAP_DAC_READ_SEARCH``, ``CAP_FOWNER``, ...), through util-linux's ``setpriv``.
(Dropping to uid 65534 would do too, but that uid cannot reach this interpreter,
which lives under ``/root``.) The scenarios are the ``child_*`` functions below; the
child imports this module and runs one of them on the same AnyIO backend as the
test, and the test checks the file system afterwards as root.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
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

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent

# Everything that lets root ignore permission bits and ownership.
ROOT_BYPASSES = "-dac_override,-dac_read_search,-fowner,-fsetid,-chown,-linux_immutable"

NOBODY = 65534


def listing(directory: str | bytes | Path) -> list[str]:
    return sorted(os.fsdecode(name) for name in os.listdir(directory))


def mode_of(name: str | bytes | Path) -> int:
    return stat.S_IMODE(os.lstat(name).st_mode)


def write_by_name(name: str | Path, data: bytes) -> None:
    with open(name, "wb") as created:
        created.write(data)


def read_by_name(name: str | Path) -> bytes:
    with open(name, "rb") as opened:
        return opened.read()


# --------------------------------------------------------------------------- #
# async with, .name, cleanup(), delete
# --------------------------------------------------------------------------- #


async def test_async_with_gives_the_str_path_of_a_new_directory(
    no_leaks: Path,
) -> None:
    async with atf.TemporaryDirectory(dir=str(no_leaks)) as path:
        assert type(path) is str
        assert os.path.dirname(path) == str(no_leaks)
        assert listing(no_leaks) == [os.path.basename(path)]
        assert os.path.isdir(path)
        assert listing(path) == []


async def test_async_with_gives_a_bytes_path_for_a_bytes_dir(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(dir=os.fsencode(no_leaks)) as path:
        assert type(path) is bytes
        assert os.path.dirname(path) == os.fsencode(no_leaks)
        assert os.path.isdir(path)


async def test_bytes_prefix_gives_a_bytes_path_in_gettempdirb(
    no_leaks: Path,
) -> None:
    async with atf.TemporaryDirectory(prefix=b"atf-bytes-prefix-") as path:
        assert type(path) is bytes
        assert os.path.dirname(path) == tempfile.gettempdirb()
        assert os.path.basename(path).startswith(b"atf-bytes-prefix-")
    assert not os.path.exists(path)


async def test_pathlike_dir_gives_a_str_path(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(dir=no_leaks) as path:
        assert type(path) is str
        assert os.path.dirname(path) == str(no_leaks)


async def test_default_dir_is_gettempdir(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(prefix="atf-default-dir-") as path:
        assert type(path) is str
        assert os.path.dirname(path) == tempfile.gettempdir()
    assert not os.path.exists(path)


async def test_prefix_and_suffix_frame_the_name(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(
        prefix="build-", suffix=".d", dir=no_leaks
    ) as path:
        name = os.path.basename(path)
        assert name.startswith("build-")
        assert name.endswith(".d")
        assert len(name) > len("build-.d")


async def test_default_prefix_is_gettempprefix(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(dir=no_leaks) as path:
        assert os.path.basename(path).startswith(tempfile.gettempprefix())


async def test_new_directory_has_mode_0700(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(dir=no_leaks) as path:
        assert mode_of(path) == 0o700


async def test_name_holds_the_path(no_leaks: Path) -> None:
    directory = atf.TemporaryDirectory(dir=no_leaks)
    async with directory as path:
        assert directory.name == path


async def test_awaited_directory_exists_until_cleanup(no_leaks: Path) -> None:
    directory = await atf.TemporaryDirectory(dir=no_leaks)
    assert listing(no_leaks) == [os.path.basename(directory.name)]
    write_by_name(os.path.join(directory.name, "file"), b"x")
    await directory.cleanup()
    assert listing(no_leaks) == []


async def test_str_and_bytes_paths_are_typed(no_leaks: Path) -> None:
    async with (
        atf.TemporaryDirectory(dir=str(no_leaks)) as text_path,
        atf.TemporaryDirectory(dir=os.fsencode(no_leaks)) as bytes_path,
    ):
        assert_type(text_path, str)
        assert_type(bytes_path, bytes)


async def test_exit_removes_the_directory_and_its_contents(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(dir=no_leaks) as path:
        os.makedirs(os.path.join(path, "a", "b", "c"))
        write_by_name(os.path.join(path, "a", "b", "c", "deep.txt"), b"deep")
        write_by_name(os.path.join(path, "top.txt"), b"top")
        os.mkfifo(os.path.join(path, "a", "fifo"))
    assert listing(no_leaks) == []


async def test_exit_removes_the_directory_when_the_body_raises(
    no_leaks: Path,
) -> None:
    with pytest.raises(LookupError, match="from the body"):  # noqa: PT012 - the body
        async with atf.TemporaryDirectory(dir=no_leaks) as path:
            write_by_name(os.path.join(path, "partial"), b"x")
            raise LookupError("from the body")
    assert listing(no_leaks) == []


async def test_cleanup_removes_the_directory_now(no_leaks: Path) -> None:
    directory = atf.TemporaryDirectory(dir=no_leaks)
    async with directory as path:
        write_by_name(os.path.join(path, "file"), b"x")
        await directory.cleanup()
        assert listing(no_leaks) == []
    assert listing(no_leaks) == []


async def test_second_cleanup_is_a_no_op(no_leaks: Path) -> None:
    directory = atf.TemporaryDirectory(dir=no_leaks)
    async with directory as path:
        write_by_name(os.path.join(path, "file"), b"x")
        await directory.cleanup()
        write_by_name(no_leaks / "neighbour", b"untouched")
        await directory.cleanup()
        assert listing(no_leaks) == ["neighbour"]
        assert read_by_name(no_leaks / "neighbour") == b"untouched"
    os.unlink(no_leaks / "neighbour")


async def test_cleanup_after_exit_is_a_no_op(no_leaks: Path) -> None:
    directory = atf.TemporaryDirectory(dir=no_leaks)
    async with directory:
        pass
    await directory.cleanup()
    assert listing(no_leaks) == []


async def test_delete_false_keeps_the_directory(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(dir=no_leaks, delete=False) as path:
        write_by_name(os.path.join(path, "kept.txt"), b"kept")
    assert listing(no_leaks) == [os.path.basename(path)]
    assert listing(path) == ["kept.txt"]
    assert read_by_name(os.path.join(path, "kept.txt")) == b"kept"
    shutil.rmtree(path)


async def test_delete_false_keeps_the_directory_when_the_body_raises(
    no_leaks: Path,
) -> None:
    directory = atf.TemporaryDirectory(dir=no_leaks, delete=False)
    with pytest.raises(LookupError, match="from the body"):
        async with directory:
            raise LookupError("from the body")
    assert listing(no_leaks) == [os.path.basename(directory.name)]
    os.rmdir(directory.name)


async def test_explicit_cleanup_removes_a_delete_false_directory(
    no_leaks: Path,
) -> None:
    # As in the standard library: delete=False is about the block's exit only.
    directory = atf.TemporaryDirectory(dir=no_leaks, delete=False)
    async with directory as path:
        write_by_name(os.path.join(path, "file"), b"x")
    await directory.cleanup()
    assert listing(no_leaks) == []


async def test_directory_already_gone_at_exit_is_no_error(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(dir=no_leaks) as path:
        write_by_name(os.path.join(path, "file"), b"x")
        shutil.rmtree(path)
    assert listing(no_leaks) == []


async def test_directory_already_gone_at_cleanup_is_no_error(no_leaks: Path) -> None:
    directory = atf.TemporaryDirectory(dir=no_leaks)
    async with directory as path:
        os.rmdir(path)
        await directory.cleanup()
    assert listing(no_leaks) == []


async def test_directory_moved_away_leaves_the_moved_copy_alone(
    no_leaks: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    async with atf.TemporaryDirectory(dir=no_leaks) as path:
        write_by_name(os.path.join(path, "file"), b"moved along")
        os.rename(path, moved)
    assert listing(no_leaks) == []
    assert listing(moved) == ["file"]
    shutil.rmtree(moved)


async def test_symlinks_out_of_the_tree_are_removed_and_targets_untouched(
    no_leaks: Path, tmp_path: Path
) -> None:
    # No permission bits are involved here, so root is enough: a cleanup that
    # followed either symlink would delete the target's contents.
    outside = tmp_path / "outside"
    outside.mkdir()
    write_by_name(outside / "secret", b"keep me")
    os.chmod(outside / "secret", 0o640)
    os.chmod(outside, 0o750)
    async with atf.TemporaryDirectory(dir=no_leaks) as path:
        os.symlink(outside, os.path.join(path, "link-to-dir"))
        os.symlink(outside / "secret", os.path.join(path, "link-to-file"))
        os.mkdir(os.path.join(path, "sub"))
        os.symlink(outside, os.path.join(path, "sub", "nested-link"))
    assert listing(no_leaks) == []
    assert listing(outside) == ["secret"]
    assert read_by_name(outside / "secret") == b"keep me"
    assert mode_of(outside / "secret") == 0o640
    assert mode_of(outside) == 0o750


async def test_dangling_symlink_inside_is_removed(no_leaks: Path) -> None:
    async with atf.TemporaryDirectory(dir=no_leaks) as path:
        os.symlink(os.path.join(path, "nowhere"), os.path.join(path, "dangling"))
    assert listing(no_leaks) == []


# --------------------------------------------------------------------------- #
# Scenarios where permission bits matter: run without root's bypass
# --------------------------------------------------------------------------- #


@cache
def setpriv_command() -> list[str] | None:
    """The command prefix that drops root's bypass, or None if we cannot."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    command = [setpriv, f"--bounding-set={ROOT_BYPASSES}"]
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    return command if probe.returncode == 0 else None


async def run_without_root_bypass(
    anyio_backend: tuple[str, dict[str, Any]],
    scenario: str,
    base: Path,
    *arguments: str,
) -> dict[str, Any]:
    """Run ``child_<scenario>(base, *arguments)`` in a child that obeys permissions."""
    if os.geteuid() != 0:
        pytest.skip("written for root; as another user the scenario needs no child")
    prefix = setpriv_command()
    if prefix is None:
        pytest.skip("util-linux setpriv cannot drop capabilities here")
    backend, options = anyio_backend
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
        "import test_directory; test_directory.child_main(sys.argv[3:])"
    )
    result = await anyio.run_process(
        [
            *prefix,
            sys.executable,
            "-W",
            "error",
            "-c",
            code,
            str(TESTS_DIR),
            str(REPO_DIR),
            backend,
            json.dumps(options),
            scenario,
            str(base),
            *arguments,
        ],
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def child_main(arguments: list[str]) -> None:
    """Entry point of the child process: run one scenario, print its outcome."""
    backend, options, scenario, *scenario_arguments = arguments
    function: Callable[..., Awaitable[dict[str, Any]]] = globals()[f"child_{scenario}"]
    outcome = anyio.run(
        function,
        *scenario_arguments,
        backend=backend,
        backend_options=json.loads(options),
    )
    print(json.dumps(outcome))


def can_unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except PermissionError:
        return False
    return True


async def child_read_only_entries(base: str) -> dict[str, Any]:
    async with atf.TemporaryDirectory(dir=base) as path:
        write_by_name(os.path.join(path, "read-only-file"), b"r")
        os.chmod(os.path.join(path, "read-only-file"), 0o400)
        os.mkdir(os.path.join(path, "read-only-dir"))
        write_by_name(os.path.join(path, "read-only-dir", "inside"), b"i")
        os.chmod(os.path.join(path, "read-only-dir", "inside"), 0o400)
        os.mkdir(os.path.join(path, "read-only-dir", "nested"))
        os.chmod(os.path.join(path, "read-only-dir", "nested"), 0o500)
        os.chmod(os.path.join(path, "read-only-dir"), 0o500)
        os.mkdir(os.path.join(path, "no-access-dir"))
        write_by_name(os.path.join(path, "no-access-dir", "hidden"), b"h")
        os.chmod(os.path.join(path, "no-access-dir"), 0o000)
        os.mkdir(os.path.join(path, "no-search-dir"))
        write_by_name(os.path.join(path, "no-search-dir", "unreachable"), b"u")
        os.chmod(os.path.join(path, "no-search-dir"), 0o600)
        os.chmod(path, 0o500)
        # The permissions really are in force in this process:
        denied = not can_unlink(os.path.join(path, "read-only-dir", "inside"))
    return {"denied": denied, "left": listing(base)}


async def test_read_only_entries_are_removed(
    anyio_backend: tuple[str, dict[str, Any]], scratch_dir: Path
) -> None:
    outcome = await run_without_root_bypass(
        anyio_backend, "read_only_entries", scratch_dir
    )
    assert outcome == {"denied": True, "left": []}
    assert listing(scratch_dir) == []


async def child_symlinks_in_read_only_dir(base: str) -> dict[str, Any]:
    outside = os.path.join(base, "outside")
    os.mkdir(outside)
    write_by_name(os.path.join(outside, "secret"), b"keep me")
    os.mkdir(os.path.join(outside, "inner"))
    os.chmod(os.path.join(outside, "secret"), 0o400)
    os.chmod(os.path.join(outside, "inner"), 0o500)
    os.chmod(outside, 0o500)
    async with atf.TemporaryDirectory(dir=base) as path:
        locked = os.path.join(path, "locked")
        os.mkdir(locked)
        os.symlink(os.path.join(outside, "secret"), os.path.join(locked, "to-file"))
        os.symlink(outside, os.path.join(locked, "to-dir"))
        os.symlink(os.path.join(outside, "inner"), os.path.join(locked, "to-inner"))
        os.symlink(outside, os.path.join(path, "top-to-dir"))
        os.chmod(locked, 0o500)
        # Removing a symlink from the locked directory is refused: the cleanup has
        # to fix the directory's permissions, and must not fix the targets'.
        denied = not can_unlink(os.path.join(locked, "to-file"))
    return {"denied": denied}


async def test_symlinks_in_a_read_only_dir_leave_target_modes_untouched(
    anyio_backend: tuple[str, dict[str, Any]], scratch_dir: Path
) -> None:
    outcome = await run_without_root_bypass(
        anyio_backend, "symlinks_in_read_only_dir", scratch_dir
    )
    outside = scratch_dir / "outside"
    assert outcome == {"denied": True}
    assert listing(scratch_dir) == ["outside"]
    assert listing(outside) == ["inner", "secret"]
    assert read_by_name(outside / "secret") == b"keep me"
    assert mode_of(outside / "secret") == 0o400
    assert mode_of(outside / "inner") == 0o500
    assert mode_of(outside) == 0o500
    shutil.rmtree(outside)


def make_undeletable_entry(base: Path) -> None:
    """``base/foreign``: a sticky, world-writable directory owned by nobody, holding
    nobody's file. The child may move ``foreign`` (it may write to it), but not
    delete the file in it, nor chmod ``foreign``: neither is the child's.
    """
    foreign = base / "foreign"
    foreign.mkdir()
    write_by_name(foreign / "theirs", b"not yours")
    os.chown(foreign / "theirs", NOBODY, NOBODY)
    os.chown(foreign, NOBODY, NOBODY)
    os.chmod(foreign, 0o1777)


async def child_cleanup_error(base: str, ignore: str) -> dict[str, Any]:
    directory = atf.TemporaryDirectory(dir=base, ignore_cleanup_errors=ignore == "yes")
    error = None
    try:
        async with directory as path:
            os.rename(os.path.join(base, "foreign"), os.path.join(path, "foreign"))
            write_by_name(os.path.join(path, "mine"), b"removable")
    except OSError as raised:
        error = type(raised).__name__
    return {"error": error, "left": listing(directory.name)}


async def test_ignore_cleanup_errors_swallows_the_error(
    anyio_backend: tuple[str, dict[str, Any]], scratch_dir: Path
) -> None:
    make_undeletable_entry(scratch_dir)
    try:
        outcome = await run_without_root_bypass(
            anyio_backend, "cleanup_error", scratch_dir, "yes"
        )
        # No error, everything removable removed, and the proof an error happened.
        assert outcome == {"error": None, "left": ["foreign"]}
        (left,) = os.listdir(scratch_dir)
        assert listing(scratch_dir / left / "foreign") == ["theirs"]
    finally:
        shutil.rmtree(scratch_dir)
        scratch_dir.mkdir()


async def test_cleanup_error_is_raised_by_default(
    anyio_backend: tuple[str, dict[str, Any]], scratch_dir: Path
) -> None:
    make_undeletable_entry(scratch_dir)
    try:
        outcome = await run_without_root_bypass(
            anyio_backend, "cleanup_error", scratch_dir, "no"
        )
        assert outcome["error"] == "PermissionError"
        assert "foreign" in outcome["left"]
    finally:
        shutil.rmtree(scratch_dir)
        scratch_dir.mkdir()


# --------------------------------------------------------------------------- #
# mkdtemp and the gettemp* functions
# --------------------------------------------------------------------------- #


async def test_mkdtemp_returns_an_absolute_path_for_a_relative_dir(
    no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(no_leaks.parent)
    path = await atf.mkdtemp(dir=no_leaks.name)
    assert type(path) is str
    assert os.path.isabs(path)
    assert os.path.dirname(path) == str(no_leaks)
    assert listing(no_leaks) == [os.path.basename(path)]
    os.rmdir(path)


async def test_mkdtemp_creates_an_empty_directory_with_mode_0700(
    no_leaks: Path,
) -> None:
    path = await atf.mkdtemp(dir=no_leaks)
    assert os.path.isdir(path)
    assert listing(path) == []
    assert mode_of(path) == 0o700
    os.rmdir(path)


async def test_mkdtemp_returns_bytes_for_a_bytes_dir(no_leaks: Path) -> None:
    path = await atf.mkdtemp(dir=os.fsencode(no_leaks))
    assert type(path) is bytes
    assert os.path.dirname(path) == os.fsencode(no_leaks)
    os.rmdir(path)


async def test_mkdtemp_path_is_typed_by_its_arguments(no_leaks: Path) -> None:
    text_path = await atf.mkdtemp(dir=str(no_leaks))
    bytes_path = await atf.mkdtemp(dir=os.fsencode(no_leaks))
    assert_type(text_path, str)
    assert_type(bytes_path, bytes)
    os.rmdir(text_path)
    os.rmdir(bytes_path)


async def test_mkdtemp_name_has_prefix_and_suffix(no_leaks: Path) -> None:
    path = await atf.mkdtemp(suffix=".work", prefix="job-", dir=no_leaks)
    name = os.path.basename(path)
    assert name.startswith("job-")
    assert name.endswith(".work")
    os.rmdir(path)


async def test_mkdtemp_gives_a_new_name_each_time(no_leaks: Path) -> None:
    paths = {await atf.mkdtemp(dir=no_leaks) for _ in range(20)}
    assert len(paths) == 20
    assert listing(no_leaks) == sorted(os.path.basename(path) for path in paths)
    for path in paths:
        os.rmdir(path)


async def test_gettempdir_equals_the_stdlib() -> None:
    assert_type(await atf.gettempdir(), str)
    assert await atf.gettempdir() == tempfile.gettempdir()


async def test_gettempdirb_equals_the_stdlib() -> None:
    assert_type(await atf.gettempdirb(), bytes)
    assert await atf.gettempdirb() == tempfile.gettempdirb()


def test_gettempprefix_equals_the_stdlib() -> None:
    assert_type(atf.gettempprefix(), str)
    assert atf.gettempprefix() == tempfile.gettempprefix()


def test_gettempprefixb_equals_the_stdlib() -> None:
    assert_type(atf.gettempprefixb(), bytes)
    assert atf.gettempprefixb() == tempfile.gettempprefixb()
