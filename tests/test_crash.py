"""A killed process leaves no litter: what has no name cannot be left behind.

API.md, "Delete semantics" and "Keeping a file": ``TemporaryFile`` and a
rolled-over ``SpooledTemporaryFile`` have no name (``O_TMPFILE``), and an
``atomic_write`` body writes to an unnamed file that gets its name only on
success, so SIGKILL -- no ``finally``, no ``atexit``, no cleanup of any kind --
leaves nothing in the directory.  The pattern atomic writers use today
(``NamedTemporaryFile(delete=False)``, write, ``os.replace``) killed at the same
moment leaves every temporary file behind; the tests count both.

Each test spawns a child (``python -c``, running :func:`child_main` below on
asyncio), which creates its files in a given directory, prints ``ready`` and
blocks; the parent kills it with SIGKILL once it is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import anyio_tempfile as atf
import anyio_tempfile._create

if sys.platform != "linux":  # pragma: no cover - O_TMPFILE and /proc are Linux's
    pytest.skip("needs O_TMPFILE and /proc (Linux)", allow_module_level=True)

COUNT = 50  # of each kind of file
PAYLOAD = b"an upload, or a config file half written\n" * 100  # well past 10 bytes
READY = b"ready\n"
READY_TIMEOUT = 30.0  # seconds; the child needs well under one
CHILD_LIFETIME = 60.0  # a child the parent lost exits by itself after this
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------- #
# The child
# --------------------------------------------------------------------------- #


def child_main() -> None:
    """``python -c ... <scenario> <directory>``: the child's entry point."""
    scenario, directory = sys.argv[1], sys.argv[2]
    asyncio.run(SCENARIOS[scenario](directory))


def _announce_ready() -> None:
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()


async def _block() -> None:
    """Wait to be killed; exit with an error if nobody does."""
    await asyncio.sleep(CHILD_LIFETIME)
    raise SystemExit("never killed")


async def _ours(directory: str) -> None:
    """50 rolled spooled files, 50 atomic_write bodies in flight, 50 TemporaryFiles."""
    held: list[Any] = []
    for _ in range(COUNT):
        spooled = await atf.SpooledTemporaryFile(max_size=10, dir=directory)
        await spooled.write(PAYLOAD)
        if not spooled.rolled:
            raise RuntimeError("the spooled file did not roll over")
        held.append(spooled)

    gate = asyncio.Event()  # never set: the bodies are in flight when killed
    bodies_written = 0
    all_written = asyncio.Event()

    async def body(index: int) -> None:
        nonlocal bodies_written
        dest = os.path.join(directory, f"written-{index}.conf")
        async with atf.atomic_write(dest) as f:
            await f.write(PAYLOAD)
            await f.flush()
            bodies_written += 1
            if bodies_written == COUNT:
                all_written.set()
            await gate.wait()

    held.extend(asyncio.create_task(body(index)) for index in range(COUNT))
    for _ in range(COUNT):
        unnamed = await atf.TemporaryFile(dir=directory)
        await unnamed.write(PAYLOAD)
        await unnamed.flush()
        held.append(unnamed)
    await all_written.wait()
    _announce_ready()
    await _block()


async def _ours_without_o_tmpfile(directory: str) -> None:
    """The same, where O_TMPFILE is unavailable: the named fallback."""
    anyio_tempfile._create._o_tmpfile_available = False
    await _ours(directory)


async def _stdlib_pattern(directory: str) -> None:
    """Today's atomic writer: NamedTemporaryFile(delete=False), write, replace."""
    gate = asyncio.Event()
    bodies_written = 0
    all_written = asyncio.Event()

    async def write_atomically(index: int) -> None:
        nonlocal bodies_written
        dest = os.path.join(directory, f"written-{index}.conf")
        with tempfile.NamedTemporaryFile(dir=directory, delete=False) as tmp:
            tmp.write(PAYLOAD)
            tmp.flush()
            bodies_written += 1
            if bodies_written == COUNT:
                all_written.set()
            await gate.wait()  # killed here: about to os.replace
        os.replace(tmp.name, dest)

    held = [asyncio.create_task(write_atomically(index)) for index in range(COUNT)]
    await all_written.wait()
    _announce_ready()
    await _block()
    held.clear()


SCENARIOS: dict[str, Callable[[str], Coroutine[Any, Any, None]]] = {
    "ours": _ours,
    "ours-without-o-tmpfile": _ours_without_o_tmpfile,
    "stdlib-pattern": _stdlib_pattern,
}


# --------------------------------------------------------------------------- #
# The parent
# --------------------------------------------------------------------------- #


def _read_ready(stdout: IO[bytes], process: subprocess.Popen[bytes]) -> None:
    """Wait for the child's ``ready`` line, at most READY_TIMEOUT seconds."""
    deadline = time.monotonic() + READY_TIMEOUT
    received = b""
    fd = stdout.fileno()
    while not received.endswith(READY):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"the child was not ready in {READY_TIMEOUT} s: {received!r}")
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            process.wait(timeout=READY_TIMEOUT)
            pytest.fail(
                f"the child exited ({process.returncode}) before it was ready: "
                f"{received!r}"
            )
        received += chunk


@contextlib.contextmanager
def ready_child(scenario: str, directory: Path, log: Path) -> Iterator[int]:
    """Run ``scenario`` in a child until it is ready; yield its pid.

    The child is killed with SIGKILL on the way out, whatever happened, and
    reaped: the caller finds the kill done and the process gone.  Its stderr
    goes to ``log`` (shown if it fails).
    """
    code = (
        f"import sys; sys.path.insert(0, {TESTS_DIR!r}); "
        "import test_crash; test_crash.child_main()"
    )
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", code, scenario, str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    try:
        try:
            _read_ready(process.stdout, process)
        except BaseException:
            sys.stderr.write(log.read_text(errors="replace"))
            raise
        yield process.pid
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=READY_TIMEOUT)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL, log.read_text(errors="replace")


def files_held_in(pid: int, directory: Path) -> set[tuple[int, int]]:
    """The (device, inode) of the files in ``directory`` that ``pid`` has open.

    Through /proc/<pid>/fd: an unnamed file shows there as
    ``<directory>/#<inode> (deleted)`` (O_TMPFILE) or ``<directory>/<name>
    (deleted)``, a named one by its name.
    """
    found: set[tuple[int, int]] = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
            status = os.stat(f"{fd_dir}/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith(f"{directory}/"):
            found.add((status.st_dev, status.st_ino))
    return found


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Where the child's stderr goes: outside the directory under test."""
    return tmp_path / "child-stderr.txt"


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def o_tmpfile_works(directory: Path) -> bool:
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):
        return False
    os.close(fd)
    return True


@pytest.fixture
def o_tmpfile_dir(scratch_dir: Path) -> Path:
    if not o_tmpfile_works(scratch_dir):
        pytest.skip("O_TMPFILE is not available here")
    return scratch_dir


# --------------------------------------------------------------------------- #
# The tests
# --------------------------------------------------------------------------- #


def test_ours_while_alive_nothing_has_a_name(o_tmpfile_dir: Path, log: Path) -> None:
    with ready_child("ours", o_tmpfile_dir, log) as pid:
        assert listing(o_tmpfile_dir) == []
        # Not because nothing was made: the child holds all 150 files, there.
        assert len(files_held_in(pid, o_tmpfile_dir)) == 3 * COUNT
        assert listing(o_tmpfile_dir) == []


def test_ours_killed_leaves_nothing(o_tmpfile_dir: Path, log: Path) -> None:
    with ready_child("ours", o_tmpfile_dir, log):
        pass
    assert listing(o_tmpfile_dir) == []


def test_stdlib_pattern_while_alive_names_every_file(
    scratch_dir: Path, log: Path
) -> None:
    with ready_child("stdlib-pattern", scratch_dir, log) as pid:
        assert len(listing(scratch_dir)) == COUNT
        assert len(files_held_in(pid, scratch_dir)) == COUNT


def test_stdlib_pattern_killed_leaves_fifty_files(scratch_dir: Path, log: Path) -> None:
    with ready_child("stdlib-pattern", scratch_dir, log):
        pass
    litter = listing(scratch_dir)
    assert len(litter) == COUNT
    # Temporary files, each with the data written, none renamed into place.
    assert all(name.startswith("tmp") for name in litter)
    assert {(scratch_dir / name).read_bytes() for name in litter} == {PAYLOAD}


def test_without_o_tmpfile_only_atomic_write_leaves_its_temporary_files(
    scratch_dir: Path, log: Path
) -> None:
    # API.md: "with the named fallback where O_TMPFILE is unavailable", a killed
    # process leaves atomic_write's named temporary file; TemporaryFile and the
    # spooled files, unlinked as soon as created, still leave nothing.
    with ready_child("ours-without-o-tmpfile", scratch_dir, log) as pid:
        assert len(files_held_in(pid, scratch_dir)) == 3 * COUNT
        assert len(listing(scratch_dir)) == COUNT
    litter = listing(scratch_dir)
    assert len(litter) == COUNT
    assert all(name.startswith(".tmp") for name in litter)
    assert {(scratch_dir / name).read_bytes() for name in litter} == {PAYLOAD}
