"""atomic_write: the destination is replaced all at once, or not at all.

API.md, "Beyond the standard library" and "Keeping a file": the data goes to a
temporary file in the destination's directory (on Linux an unnamed ``O_TMPFILE``
one, a named ``.tmp*`` one as the fallback); on success it is flushed, fsynced,
put into place and the directory fsynced (``fsync=False``: neither); on an
exception or a cancellation the destination is untouched and the temporary file
is gone.  New files get ``0o666`` less the umask, replaced files keep their mode;
``overwrite=False`` refuses an existing destination before the body runs and,
without a race, at the link.

Most behavioural tests run twice: with ``O_TMPFILE`` and with the named fallback
forced (``storage`` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from support import open_descriptors

import anyio_tempfile as atf
import anyio_tempfile._create

pytestmark = pytest.mark.anyio

# These tests look at the file system directly and synchronously on purpose: what
# they check is its state at that instant, which a worker thread would not change.
# ruff: noqa: ASYNC230

T = TypeVar("T")

OLD = b"the old content, which must survive anything short of success\n" * 4
NEW = bytes(range(256)) * 64
HEAD, TAIL = NEW[:5000], NEW[5000:]
DEST = "dest.bin"

Storage = Literal["o_tmpfile", "named"]
Initial = Literal["absent", "old"]


class BodyError(Exception):
    """What the body of an ``async with atomic_write`` raises of its own accord."""


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def state_of(path: Path) -> bytes | None:
    """The destination's content, ``None`` if it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def make_initial(path: Path, initial: Initial) -> bytes | None:
    if initial == "old":
        path.write_bytes(OLD)
        return OLD
    return None


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


@pytest.fixture(params=["o_tmpfile", "named"])
def storage(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    scratch_dir: Path,
) -> Storage:
    """Which temporary file the body writes to: ``O_TMPFILE``, or the named one."""
    chosen: Storage = request.param
    if chosen == "o_tmpfile":
        if not o_tmpfile_works(scratch_dir):
            pytest.skip("O_TMPFILE is not available here")
    else:
        monkeypatch.setattr(anyio_tempfile._create, "_o_tmpfile_available", False)
    return chosen


@pytest.fixture(autouse=True)
def no_descriptor_leaks() -> Iterator[None]:
    before = open_descriptors()
    yield
    assert open_descriptors() - before == set(), "a descriptor was left open"


@contextlib.contextmanager
def umask_set(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def temporary_entries(directory: Path) -> list[str]:
    return [name for name in listing(directory) if name != DEST]


# -- success -------------------------------------------------------------------


async def test_writes_the_exact_bytes(scratch_dir: Path, storage: Storage) -> None:
    dest = scratch_dir / DEST
    async with atf.atomic_write(dest) as f:
        assert await f.write(HEAD) == len(HEAD)
        await f.write(TAIL)
    assert dest.read_bytes() == NEW
    assert listing(scratch_dir) == [DEST]


async def test_replaces_the_old_content(scratch_dir: Path, storage: Storage) -> None:
    dest = scratch_dir / DEST
    dest.write_bytes(OLD + OLD)  # longer than what replaces it
    async with atf.atomic_write(dest) as f:
        await f.write(b"short")
    assert dest.read_bytes() == b"short"
    assert listing(scratch_dir) == [DEST]


async def test_empty_body_writes_an_empty_file(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    dest.write_bytes(OLD)
    async with atf.atomic_write(dest):
        pass
    assert dest.read_bytes() == b""
    assert listing(scratch_dir) == [DEST]


async def test_leaves_neighbours_alone(scratch_dir: Path, storage: Storage) -> None:
    (scratch_dir / "neighbour").write_bytes(b"n")
    dest = scratch_dir / DEST
    async with atf.atomic_write(dest) as f:
        await f.write(NEW)
    assert listing(scratch_dir) == [DEST, "neighbour"]
    assert (scratch_dir / "neighbour").read_bytes() == b"n"


async def test_replaced_file_has_one_link(scratch_dir: Path, storage: Storage) -> None:
    # No staging name stays linked to the data.
    dest = scratch_dir / DEST
    dest.write_bytes(OLD)
    async with atf.atomic_write(dest) as f:
        await f.write(NEW)
    assert os.stat(dest).st_nlink == 1


@pytest.mark.parametrize(
    ("mode", "encoding", "newline", "errors", "text"),
    [
        ("w", "utf-8", None, None, "naïve\ncafé\n"),
        ("w", "utf-16", "\r\n", None, "x\ny\n"),
        ("wt", "latin-1", "", None, "café\r\nbar\n"),
        ("w+", "ascii", None, "replace", "é and ü\n"),
        ("w", "utf-8-sig", "\r", None, "bom\nfirst\n"),
    ],
    ids=["utf8", "utf16-crlf", "latin1-untranslated", "ascii-replace", "utf8sig-cr"],
)
async def test_text_mode_writes_what_open_would(
    scratch_dir: Path,
    tmp_path: Path,
    storage: Storage,
    mode: str,
    encoding: str,
    newline: str | None,
    errors: str | None,
    text: str,
) -> None:
    reference = tmp_path / "reference"
    with open(reference, mode, encoding=encoding, newline=newline, errors=errors) as r:
        r.write(text)
        r.write(text)
    dest = scratch_dir / DEST
    async with atf.atomic_write(
        dest, mode, encoding=encoding, newline=newline, errors=errors
    ) as f:
        assert f.encoding == encoding
        await f.write(text)
        await f.writelines([text])
    assert dest.read_bytes() == reference.read_bytes()
    assert listing(scratch_dir) == [DEST]


async def test_binary_mode_refuses_str_and_writes_nothing(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    with pytest.raises(TypeError):
        async with atf.atomic_write(dest) as f:
            await f.write("text")
    assert listing(scratch_dir) == []


@pytest.mark.parametrize("kind", ["str", "bytes", "Path"])
async def test_path_may_be_str_bytes_or_pathlike(
    scratch_dir: Path, storage: Storage, kind: str
) -> None:
    dest = scratch_dir / DEST
    path: str | bytes | Path = (
        str(dest) if kind == "str" else os.fsencode(dest) if kind == "bytes" else dest
    )
    async with atf.atomic_write(path) as f:
        await f.write(NEW)
    assert dest.read_bytes() == NEW
    assert listing(scratch_dir) == [DEST]


async def test_non_path_is_type_error(scratch_dir: Path) -> None:
    with pytest.raises(TypeError, match="PathLike"):
        atf.atomic_write(42)  # type: ignore[call-overload]
    assert listing(scratch_dir) == []


async def test_relative_path_is_resolved_when_entered(
    scratch_dir: Path, tmp_path: Path, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(scratch_dir)
    async with atf.atomic_write(DEST) as f:
        monkeypatch.chdir(elsewhere)
        await f.write(NEW)
    assert (scratch_dir / DEST).read_bytes() == NEW
    assert listing(elsewhere) == []


async def test_closing_the_file_early_still_commits(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    async with atf.atomic_write(dest) as f:
        await f.write(NEW)
        await f.aclose()
        assert f.closed
    assert dest.read_bytes() == NEW
    assert listing(scratch_dir) == [DEST]


async def test_closing_a_text_file_early_still_commits(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    async with atf.atomic_write(dest, "w", encoding="utf-8") as f:
        await f.write("é" * 1000)
        await f.aclose()
    assert dest.read_bytes() == ("é" * 1000).encode()


# -- readers never see a half-written file ---------------------------------------


async def test_destination_is_untouched_while_the_body_runs(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    dest.write_bytes(OLD)
    async with atf.atomic_write(dest) as f:
        for start in range(0, len(NEW), 4096):
            await f.write(NEW[start : start + 4096])
            await f.flush()
            assert dest.read_bytes() == OLD
    assert dest.read_bytes() == NEW


@pytest.mark.parametrize("initial", ["absent", "old"])
async def test_concurrent_reader_sees_old_or_complete_new_only(
    scratch_dir: Path, storage: Storage, initial: Initial
) -> None:
    dest = scratch_dir / DEST
    make_initial(dest, initial)
    big = os.urandom(64 * 1024) * 24  # 1.5 MiB in 24 chunks
    chunk = 64 * 1024
    expected_before = "missing" if initial == "absent" else "old"
    seen: list[str] = []
    started = threading.Event()
    done = threading.Event()

    def poll() -> None:
        while True:
            finished = done.is_set()
            try:
                data = dest.read_bytes()
            except FileNotFoundError:
                label = "missing"
            else:
                label = (
                    "old" if data == OLD else "new" if data == big else f"{len(data)}B"
                )
            if not seen or seen[-1] != label:
                seen.append(label)
            started.set()
            if finished:
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, poll)
        while not started.is_set():  # noqa: ASYNC110 - set by a thread
            await anyio.sleep(0.001)
        async with atf.atomic_write(dest) as f:
            for start in range(0, len(big), chunk):
                await f.write(big[start : start + chunk])
                await f.flush()
                await anyio.sleep(0.002)  # let the reader look meanwhile
        done.set()
    # It saw the old state (once or more), then the new, and nothing else.
    assert seen == [expected_before, "new"]


# -- failure -------------------------------------------------------------------


@pytest.mark.parametrize("initial", ["absent", "old"])
async def test_exception_in_the_body_leaves_the_destination_untouched(
    scratch_dir: Path, storage: Storage, initial: Initial
) -> None:
    dest = scratch_dir / DEST
    before = make_initial(dest, initial)
    error = BodyError("stop")
    with pytest.raises(BodyError) as caught:  # noqa: PT012 - the body
        async with atf.atomic_write(dest) as f:
            await f.write(NEW)
            await f.flush()
            raise error
    assert caught.value is error
    assert state_of(dest) == before
    assert listing(scratch_dir) == ([] if before is None else [DEST])


async def test_exception_after_closing_early_leaves_the_destination_untouched(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    dest.write_bytes(OLD)
    with pytest.raises(BodyError):  # noqa: PT012 - the body
        async with atf.atomic_write(dest) as f:
            await f.write(NEW)
            await f.aclose()
            raise BodyError
    assert dest.read_bytes() == OLD
    assert listing(scratch_dir) == [DEST]


async def test_missing_directory_is_file_not_found_before_the_body(
    scratch_dir: Path, storage: Storage
) -> None:
    ran = False
    with pytest.raises(FileNotFoundError):
        async with atf.atomic_write(scratch_dir / "missing" / DEST):
            ran = True
    assert not ran
    assert listing(scratch_dir) == []


async def test_directory_in_the_way_fails_and_leaves_it_alone(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    dest.mkdir()
    (dest / "inside").write_bytes(b"i")
    with pytest.raises(OSError) as caught:  # noqa: PT011 - errno checked below  # noqa: PT012 - the body
        async with atf.atomic_write(dest) as f:
            await f.write(NEW)
    assert caught.value.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST)
    assert listing(scratch_dir) == [DEST]
    assert listing(dest) == ["inside"]


# -- overwrite=False -------------------------------------------------------------


async def test_overwrite_false_creates_an_absent_destination(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    async with atf.atomic_write(dest, overwrite=False) as f:
        await f.write(NEW)
    assert dest.read_bytes() == NEW
    assert listing(scratch_dir) == [DEST]


@pytest.mark.parametrize("existing", ["file", "dangling-symlink", "directory"])
async def test_overwrite_false_refuses_an_existing_destination_before_the_body(
    scratch_dir: Path, storage: Storage, existing: str
) -> None:
    dest = scratch_dir / DEST
    if existing == "file":
        dest.write_bytes(OLD)
    elif existing == "directory":
        dest.mkdir()
    else:
        dest.symlink_to(scratch_dir / "nowhere")
    ran = False
    with pytest.raises(FileExistsError) as caught:
        async with atf.atomic_write(dest, overwrite=False):
            ran = True
    assert not ran
    assert caught.value.errno == errno.EEXIST
    assert listing(scratch_dir) == [DEST]
    if existing == "file":
        assert dest.read_bytes() == OLD


async def test_overwrite_false_refuses_a_destination_that_appears_meanwhile(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    with pytest.raises(FileExistsError) as caught:  # noqa: PT012 - the body
        async with atf.atomic_write(dest, overwrite=False) as f:
            await f.write(NEW)
            dest.write_bytes(b"intruder")
    assert "discarded" in str(caught.value)
    assert caught.value.errno == errno.EEXIST
    assert caught.value.filename == str(dest)
    assert dest.read_bytes() == b"intruder"
    assert listing(scratch_dir) == [DEST]


# -- modes -----------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o027, 0o000])
async def test_new_file_gets_0o666_less_the_umask(
    scratch_dir: Path, storage: Storage, mask: int
) -> None:
    dest = scratch_dir / DEST
    with umask_set(mask):
        async with atf.atomic_write(dest) as f:
            await f.write(NEW)
    assert mode_of(dest) == 0o666 & ~mask


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o755, 0o600])
async def test_replaced_file_keeps_its_mode(
    scratch_dir: Path, storage: Storage, mode: int
) -> None:
    dest = scratch_dir / DEST
    dest.write_bytes(OLD)
    os.chmod(dest, mode)
    with umask_set(0o077):
        async with atf.atomic_write(dest) as f:
            await f.write(NEW)
    assert mode_of(dest) == mode
    assert dest.read_bytes() == NEW


# -- fsync -----------------------------------------------------------------------


@dataclass
class Synced:
    kind: str  # "file" or "directory"
    inode: int
    size: int
    dest_then: bytes | None  # the destination's content at the time


@dataclass
class FsyncRecorder:
    dest: Path
    real: Callable[[int], None]
    calls: list[Synced] = field(default_factory=list)

    def __call__(self, fd: int) -> None:
        status = os.fstat(fd)
        kind = (
            "directory"
            if stat.S_ISDIR(status.st_mode)
            else "file"
            if stat.S_ISREG(status.st_mode)
            else "other"
        )
        self.calls.append(
            Synced(kind, status.st_ino, status.st_size, state_of(self.dest))
        )
        self.real(fd)


@pytest.fixture
def fsync_calls(scratch_dir: Path, monkeypatch: pytest.MonkeyPatch) -> FsyncRecorder:
    recorder = FsyncRecorder(scratch_dir / DEST, os.fsync)
    monkeypatch.setattr(os, "fsync", recorder)
    return recorder


@pytest.mark.parametrize("initial", ["absent", "old"])
async def test_fsync_syncs_the_data_before_the_name_then_the_directory(
    scratch_dir: Path, storage: Storage, fsync_calls: FsyncRecorder, initial: Initial
) -> None:
    dest = scratch_dir / DEST
    before = make_initial(dest, initial)
    async with atf.atomic_write(dest, fsync=True) as f:
        await f.write(NEW)
    directory = os.stat(scratch_dir)
    assert fsync_calls.calls == [
        Synced("file", os.stat(dest).st_ino, len(NEW), before),
        Synced("directory", directory.st_ino, directory.st_size, NEW),
    ]


async def test_fsync_is_the_default(
    scratch_dir: Path, storage: Storage, fsync_calls: FsyncRecorder
) -> None:
    async with atf.atomic_write(scratch_dir / DEST) as f:
        await f.write(NEW)
    assert [call.kind for call in fsync_calls.calls] == ["file", "directory"]


async def test_fsync_false_syncs_nothing(
    scratch_dir: Path, storage: Storage, fsync_calls: FsyncRecorder
) -> None:
    dest = scratch_dir / DEST
    async with atf.atomic_write(dest, fsync=False) as f:
        await f.write(NEW)
    assert fsync_calls.calls == []
    assert dest.read_bytes() == NEW


async def test_failed_body_syncs_nothing(
    scratch_dir: Path, storage: Storage, fsync_calls: FsyncRecorder
) -> None:
    with pytest.raises(BodyError):  # noqa: PT012 - the body
        async with atf.atomic_write(scratch_dir / DEST, fsync=True) as f:
            await f.write(NEW)
            raise BodyError
    assert fsync_calls.calls == []


# -- where the temporary file lives ------------------------------------------------


@pytest.mark.parametrize("storage", ["o_tmpfile"], indirect=True)
@pytest.mark.parametrize("initial", ["absent", "old"])
async def test_o_tmpfile_leaves_no_directory_entry_while_the_body_runs(
    scratch_dir: Path, storage: Storage, initial: Initial
) -> None:
    dest = scratch_dir / DEST
    make_initial(dest, initial)
    async with atf.atomic_write(dest) as f:
        await f.write(NEW)
        await f.flush()
        assert temporary_entries(scratch_dir) == []
    assert listing(scratch_dir) == [DEST]


async def test_temporary_file_is_in_the_destination_directory(
    scratch_dir: Path, storage: Storage
) -> None:
    async with atf.atomic_write(scratch_dir / DEST) as f:
        where = os.readlink(f"/proc/self/fd/{await f.fileno()}")
        await f.write(NEW)
    assert os.path.dirname(where) == str(scratch_dir)


@pytest.mark.parametrize("storage", ["named"], indirect=True)
async def test_named_fallback_has_one_tmp_entry_only_while_the_body_runs(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    async with atf.atomic_write(dest) as f:
        await f.write(NEW)
        await f.flush()
        during = temporary_entries(scratch_dir)
        assert len(during) == 1
        assert during[0].startswith(".tmp")
        assert (scratch_dir / during[0]).read_bytes() == NEW
    assert listing(scratch_dir) == [DEST]


@pytest.mark.parametrize("storage", ["named"], indirect=True)
async def test_named_fallback_removes_its_tmp_entry_on_error(
    scratch_dir: Path, storage: Storage
) -> None:
    with pytest.raises(BodyError):  # noqa: PT012 - the body
        async with atf.atomic_write(scratch_dir / DEST) as f:
            await f.write(NEW)
            assert len(temporary_entries(scratch_dir)) == 1
            raise BodyError
    assert listing(scratch_dir) == []


# -- wrong use -------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", ["r", "rb", "r+", "r+b", "a", "ab", "a+", "x", "xb", "w+x"]
)
async def test_mode_without_plain_w_is_value_error(
    scratch_dir: Path, mode: str
) -> None:
    with pytest.raises(ValueError, match="mode"):
        atf.atomic_write(scratch_dir / DEST, mode)
    assert listing(scratch_dir) == []


@pytest.mark.parametrize("mode", ["w+", "wb", "w+b", "wt", "bw"])
async def test_write_modes_are_accepted(
    scratch_dir: Path, storage: Storage, mode: str
) -> None:
    dest = scratch_dir / DEST
    async with atf.atomic_write(dest, mode) as f:
        await f.write("ok" if "b" not in mode else b"ok")
    assert dest.read_bytes() == b"ok"


async def test_entering_twice_is_runtime_error(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    writer = atf.atomic_write(dest)
    async with writer as f:
        await f.write(b"first")
    ran = False
    with pytest.raises(RuntimeError, match="already entered"):
        async with writer as f:
            ran = True
    assert not ran
    assert dest.read_bytes() == b"first"
    assert listing(scratch_dir) == [DEST]


async def test_entering_while_entered_is_runtime_error_and_discards(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    dest.write_bytes(OLD)
    writer = atf.atomic_write(dest)
    with pytest.raises(RuntimeError, match="already entered"):  # noqa: PT012 - the body
        async with writer as f:
            await f.write(NEW)
            async with writer:
                pass
    assert dest.read_bytes() == OLD
    assert listing(scratch_dir) == [DEST]


# -- cancellation ----------------------------------------------------------------

Style = Literal["scope-before", "scope-during", "native-before", "native-during"]
Body = Literal["plain", "closes-early", "overwrite-false"]


class Hops:
    """Stands in for ``anyio.to_thread.run_sync``: numbers every thread hop.

    With ``at`` set, calls ``cancel`` at that hop: on the loop just before it
    (``before``), or from its worker thread before its work (``during``).
    """

    def __init__(self, real: Callable[..., Awaitable[Any]]) -> None:
        self.real = real
        self.count = 0
        self.at: int | None = None
        self.during = False
        self.cancel: Callable[[], object] = lambda: None
        self.fired = False

    async def run_sync(self, func: Callable[..., T], *args: object, **kwargs: Any) -> T:
        index = self.count
        self.count += 1
        call = func
        if index == self.at:
            self.fired = True
            if not self.during:
                self.cancel()
            else:
                cancel = self.cancel

                def call(*inner_args: object) -> T:
                    anyio.from_thread.run_sync(cancel)
                    return func(*inner_args)

        result: T = await self.real(call, *args, **kwargs)
        return result


@dataclass
class Run:
    cancelled: bool  # the cancellation reached the caller
    after_ran: bool  # the code after the block ran
    error: BaseException | None


async def write_block(dest: Path, body: Body, ran: list[str]) -> None:
    async with atf.atomic_write(dest, overwrite=body != "overwrite-false") as f:
        await f.write(HEAD)
        await f.flush()
        # A bytearray past 8 KiB is written in a worker call of its own (bytes
        # would be queued for the commit's call): one more hop to cancel at.
        await f.write(bytearray(TAIL))
        if body == "closes-early":
            await f.aclose()
    ran.append("after")


async def run_once(hops: Hops, style: Style, dest: Path, body: Body) -> Run:
    ran: list[str] = []
    if style.startswith("scope"):
        with anyio.CancelScope() as scope:
            hops.cancel = scope.cancel
            try:
                await write_block(dest, body, ran)
            except Exception as exc:
                return Run(False, bool(ran), exc)
        return Run(scope.cancelled_caught, bool(ran), None)
    task = asyncio.ensure_future(write_block(dest, body, ran))
    hops.cancel = task.cancel
    await asyncio.wait([task])
    if task.cancelled():
        return Run(True, bool(ran), None)
    return Run(False, bool(ran), task.exception())


@pytest.mark.parametrize(
    ("initial", "body"),
    [
        ("absent", "plain"),
        ("old", "plain"),
        ("absent", "closes-early"),
        ("old", "closes-early"),
        ("absent", "overwrite-false"),  # onto an existing file it never starts
    ],
)
@pytest.mark.parametrize(
    "style", ["scope-before", "scope-during", "native-before", "native-during"]
)
async def test_cancellation_at_every_hop_leaves_old_or_complete_new(
    scratch_dir: Path,
    storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: tuple[str, dict[str, Any]],
    style: Style,
    initial: Initial,
    body: Body,
) -> None:
    if style.startswith("native") and anyio_backend[0] != "asyncio":
        pytest.skip("Task.cancel() is asyncio's")
    dest = scratch_dir / DEST
    hops = Hops(anyio.to_thread.run_sync)
    monkeypatch.setattr(anyio.to_thread, "run_sync", hops.run_sync)

    # Uncancelled, to number the hops: the last one is the commit.
    before = make_initial(dest, initial)
    plain = await run_once(hops, "scope-before", dest, body)
    assert plain == Run(False, True, None)
    assert dest.read_bytes() == NEW
    total = hops.count
    assert total >= 4  # open, write, flush, write, ..., commit

    problems: list[str] = []
    for at in range(total):
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        make_initial(dest, initial)
        descriptors = open_descriptors()
        hops.count, hops.at, hops.during, hops.fired = 0, at, "during" in style, False
        outcome = await run_once(hops, style, dest, body)
        hops.at = None
        committed = at == total - 1  # the cancellation came with the commit
        expected_state = NEW if committed else before
        label = f"hop {at}/{total} ({style})"
        if not hops.fired:
            problems.append(f"{label}: never reached")
        if outcome != Run(True, False, None):
            problems.append(f"{label}: {outcome}, not the cancellation")
        state = state_of(dest)
        if state != expected_state:
            shown = "absent" if state is None else f"{len(state)} bytes"
            problems.append(f"{label}: destination is {shown}")
        expected_listing = [] if expected_state is None else [DEST]
        if listing(scratch_dir) != expected_listing:
            problems.append(f"{label}: directory holds {listing(scratch_dir)}")
        leaked = open_descriptors() - descriptors
        if leaked:
            problems.append(f"{label}: descriptors {sorted(leaked)} left open")
    assert not problems, "\n".join(problems)


async def test_scope_cancelled_as_the_body_ends_discards_the_data(
    scratch_dir: Path, storage: Storage
) -> None:
    dest = scratch_dir / DEST
    dest.write_bytes(OLD)
    with anyio.CancelScope() as scope:
        async with atf.atomic_write(dest) as f:
            await f.write(NEW)
            scope.cancel()  # no await point follows in the body
    assert scope.cancelled_caught
    assert dest.read_bytes() == OLD
    assert listing(scratch_dir) == [DEST]


async def test_native_cancel_as_the_body_ends_discards_the_data(
    scratch_dir: Path, storage: Storage, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    if anyio_backend[0] != "asyncio":
        pytest.skip("Task.cancel() is asyncio's")
    dest = scratch_dir / DEST
    dest.write_bytes(OLD)

    async def block() -> None:
        async with atf.atomic_write(dest) as f:
            await f.write(NEW)
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # no await point follows in the body

    task = asyncio.ensure_future(block())
    await asyncio.wait([task])
    assert task.cancelled()
    assert dest.read_bytes() == OLD
    assert listing(scratch_dir) == [DEST]
