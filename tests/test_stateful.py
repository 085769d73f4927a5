"""Stateful differential tests: long random sessions against the standard library.

A reliability suite.  Hypothesis' ``RuleBasedStateMachine`` drives one of our files
and the standard library's file of the same kind and mode, created in the same
scratch directory, through the same random sequence of operations: writes (of
``bytes``, ``bytearray``, ``memoryview``, ``array``, small and past the in-loop
buffers' limits), reads of every kind, seeks, tells, truncates, flushes, descriptor
checks, rollovers, closing.  After every step the outcomes are equal: the value
returned, or the exact type of the exception (and its ``errno`` for an
``OSError``); the invariants then compare what can be looked at without I/O
(``closed``, ``rolled``, ``name``, ``mode``, ``newlines``, the directory listing).
Every flush compares the bytes the two files hold; teardown compares the content,
closes both, and checks that no descriptor leaked and that the directory holds
exactly what the delete semantics say.

Our calls go through an AnyIO blocking portal, one per test, on asyncio, uvloop and
trio: Hypothesis' rules are synchronous.  Each machine runs ``max_examples`` random
sessions per backend, set by ``ANYIO_TEMPFILE_FUZZ_EXAMPLES``: 20 by default (the
``tests`` session, on every Python), 500 in ``nox -s reliability`` (CI, one Python),
5,000 in ``nox -s fuzz``.

The reference for ``SpooledTemporaryFile`` is CPython 3.13's on every Python (the
package follows 3.13), with API.md's one documented difference applied to it: a
bare ``truncate()`` that grows the file past ``max_size`` rolls it over.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import io
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support import Spooled313, failed_rollover_undone, open_descriptors

import anyio_tempfile as atf

# The machines look at the file system directly and synchronously on purpose:
# what they check is its state between two steps.

Kind = Literal["TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile"]

# The same backends as conftest's anyio_backend fixture; these tests are
# synchronous, so they open a blocking portal on each instead.
BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"),
    pytest.param(("trio", {}), id="trio"),
]

EXAMPLES = int(os.environ.get("ANYIO_TEMPFILE_FUZZ_EXAMPLES", "20"))

MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Python < 3.12's NamedTemporaryFile has no delete_on_close (it always deletes
# on close); ours has it on every Python.
STDLIB_HAS_DELETE_ON_CLOSE = sys.version_info >= (3, 12)


# -- outcomes -------------------------------------------------------------------

# ("ok", value) or ("raised", exception type, errno or None).
Outcome = tuple[Any, ...]


def failure(exc: Exception) -> Outcome:
    return ("raised", type(exc), exc.errno if isinstance(exc, OSError) else None)


@dataclass(frozen=True)
class Big:
    """A write past the in-loop buffers' limit, shown briefly in reproducers."""

    name: str

    def value(self) -> Any:
        return BIG_DATA[self.name]


# A write's argument, built afresh for each side: the data and how to wrap it.
Payload = tuple[Any, str]


def build(payload: Payload) -> Any:
    data, wrapper = payload
    if isinstance(data, Big):
        data = data.value()
    if wrapper == "bytearray":
        return bytearray(data)
    if wrapper == "memoryview":
        return memoryview(data)
    if wrapper == "strided":
        # Not C-contiguous: a BufferError on both sides.
        return memoryview(data * 2)[::2]
    if wrapper == "array":
        # Two-byte items: the count written is in bytes.
        return array.array("H", data[: len(data) // 2 * 2])
    return data


def run_stdlib(file: Any, name: str, args: tuple[Any, ...]) -> Outcome:
    try:
        if name in ("readinto", "readinto1"):
            buffer = bytearray(args[0])
            count = getattr(file, name)(buffer)
            return ("ok", (count, bytes(buffer)))
        if name == "next_line":
            # ``async for`` gives the lines readline() gives, up to the first
            # empty one.
            line = file.readline()
            return ("ok", line if line else "stop")
        return ("ok", getattr(file, name)(*args))
    except Exception as exc:
        return failure(exc)


async def run_ours(file: Any, name: str, args: tuple[Any, ...]) -> Outcome:
    try:
        if name in ("readinto", "readinto1"):
            buffer = bytearray(args[0])
            count = await getattr(file, name)(buffer)
            return ("ok", (count, bytes(buffer)))
        if name == "next_line":
            try:
                return ("ok", await file.__anext__())
            except StopAsyncIteration:
                return ("ok", "stop")
        return ("ok", await getattr(file, name)(*args))
    except Exception as exc:
        return failure(exc)


def attribute(file: Any, name: str) -> Outcome:
    try:
        return ("ok", getattr(file, name))
    except Exception as exc:
        return failure(exc)


def raw_bytes(file: Any) -> bytes:
    """All the bytes ``file`` (a flushed synchronous file) holds, position kept."""
    if isinstance(file, io.TextIOWrapper):
        file = file.buffer
    if isinstance(file, io.BytesIO):
        return file.getvalue()
    fd = file.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


# -- the configuration drawn for each session -------------------------------------


@dataclass(frozen=True)
class Config:
    text: bool
    buffering: int
    encoding: str | None = None
    newline: str | None = None
    errors: str | None = None
    max_size: int = 0  # spooled files
    delete: bool = True  # named files
    delete_on_close: bool = True  # named files

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "mode": "w+" if self.text else "w+b",
            "buffering": self.buffering,
        }
        if self.text:
            options.update(
                encoding=self.encoding, newline=self.newline, errors=self.errors
            )
        return options


# utf-16 and utf-8-sig write a byte-order mark and are not ASCII-safe (ours
# buffers no text for them); latin-1 cannot encode most of TEXT_PIECES.
ENCODINGS = ["utf-8", "latin-1", "utf-16", "utf-8-sig"]
NEWLINES = [None, "", "\n", "\r\n", "\r"]
# 0: never by size; 1 and 7: crossed by the first writes; 9000: past the in-loop
# buffers' small-transfer limit (8 KiB), crossed by a big write.
MAX_SIZES = [0, 1, 7, 16, 64, 9000]


@st.composite
def configs(draw: st.DrawFn, kind: Kind) -> Config:
    text = draw(st.booleans())
    if text:
        # 1: line buffered (ours buffers nothing then); 64: a small buffer.
        config = Config(
            text=True,
            buffering=draw(st.sampled_from([-1, 1, 64])),
            encoding=draw(st.sampled_from(ENCODINGS)),
            newline=draw(st.sampled_from(NEWLINES)),
            errors=draw(st.sampled_from([None, "strict", "replace"])),
        )
    else:
        # 0: unbuffered (a FileIO: no read1, no in-loop buffers).
        config = Config(text=False, buffering=draw(st.sampled_from([-1, 0, 64])))
    if kind == "SpooledTemporaryFile":
        return dataclasses.replace(config, max_size=draw(st.sampled_from(MAX_SIZES)))
    if kind == "NamedTemporaryFile":
        return dataclasses.replace(
            config,
            delete=draw(st.booleans()),
            delete_on_close=draw(st.booleans()),
        )
    return config


# -- strategies for the steps -----------------------------------------------------

BYTE_PIECES = [
    b"",
    b"a",
    b"bc",
    b"\n",
    b"\r",
    b"\r\n",
    b"xyz12",
    b"\xff\x00",
    b"0123456789",
]
# Past SMALL (8 KiB): as bytes, queued by reference up to MOST (256 KiB); any
# other buffer goes straight to the worker.
BIG_BYTES = bytes(range(256)) * 36
# Past LARGE (256 KiB): queued by reference up to BATCH, or read ahead in chunks.
HUGE_BYTES = bytes(range(251)) * 1200
TEXT_PIECES = ["", "a", "bc", "\n", "\r", "\r\n", "é", "€", "𝄞", "xyz12", "0123456789"]
BIG_TEXT = "ASCII line of text\n" * 480
BIG_WIDE_TEXT = "wïde €\n" * 1300
BIG_DATA: dict[str, Any] = {
    "bytes": BIG_BYTES,
    "huge bytes": HUGE_BYTES,
    "text": BIG_TEXT,
    "wide text": BIG_WIDE_TEXT,
}

small_bytes = st.lists(st.sampled_from(BYTE_PIECES), max_size=4).map(b"".join)
byte_data = st.one_of(
    small_bytes,
    small_bytes,
    small_bytes,
    st.sampled_from([Big("bytes"), Big("huge bytes")]),
)
byte_payloads = st.tuples(
    byte_data,
    st.sampled_from(["bytes", "bytes", "bytearray", "memoryview", "strided", "array"]),
)
small_text = st.lists(st.sampled_from(TEXT_PIECES), max_size=4).map("".join)
text_data = st.one_of(
    small_text, small_text, small_text, st.sampled_from([Big("text"), Big("wide text")])
)
text_payloads = st.tuples(text_data, st.just("str"))

# The in-loop buffers serve reads up to 8 KiB and read 64 KiB ahead; reads of
# 256 KiB and more fetch chunks ahead.
big_sizes = st.sampled_from([8191, 8192, 8193, 70000, 262144, 300000])
read_sizes = st.one_of(st.none(), st.integers(-1, 40), big_sizes)
int_sizes = st.one_of(st.integers(-1, 40), big_sizes)
buffer_sizes = st.one_of(st.integers(0, 40), big_sizes)
offsets = st.one_of(st.integers(-5, 80), st.sampled_from([8192, 70000, 300000]))
whences = st.sampled_from([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END])
truncate_sizes = st.one_of(st.none(), st.integers(-2, 80), st.sampled_from([9000]))


# -- the machines -------------------------------------------------------------------


@dataclass
class Context:
    """What a test hands its machine: the portal, and where to make directories."""

    portal: BlockingPortal
    base: Path


def is_text(machine: FileMachine) -> bool:
    return machine.config is not None and machine.config.text


def is_binary(machine: FileMachine) -> bool:
    return machine.config is not None and not machine.config.text


def is_open(machine: FileMachine) -> bool:
    return machine.config is not None and not machine.closed


class FileMachine(RuleBasedStateMachine):
    """One of our files and the standard library's, through the same steps."""

    kind: ClassVar[Kind]

    # Positions told so far (cookies, in text mode): seek targets.
    positions = Bundle("positions")

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.portal = context.portal
        self.descriptors_before = open_descriptors()
        self.directory = Path(tempfile.mkdtemp(dir=context.base))
        self.config: Config | None = None
        self.expected: Any = None  # the standard library's file
        self.actual: Any = None  # ours
        self.our_block: Any = None  # ours, entered with ``async with``
        self.closed = False
        self.exited = False
        self.names: tuple[str, str] | None = None  # named files: (stdlib, ours)

    # -- plumbing ---------------------------------------------------------------

    @property
    def expected_file(self) -> Any:
        """The stdlib's underlying file, for attributes.

        NamedTemporaryFile's wrapper caches the first value of a non-callable
        attribute it forwards (a stale ``newlines``).
        """
        return getattr(self.expected, "file", self.expected)

    def same(
        self, name: str, make_args: Callable[[], tuple[Any, ...]] = tuple
    ) -> Outcome:
        """Run one step on both sides; the outcomes must be equal."""
        if name == "truncate" and make_args() in ((), (None,)):
            self.follow_documented_rollover()
        expected = self.run_expected(name, make_args())
        actual = self.portal.call(run_ours, self.actual, name, make_args())
        assert actual == expected, f"{name}{make_args()!r}"
        return expected

    def run_expected(self, name: str, args: tuple[Any, ...]) -> Outcome:
        """One step on the standard library's file, a failed rollover undone."""
        with failed_rollover_undone(self.expected):
            return run_stdlib(self.expected, name, args)

    def follow_documented_rollover(self) -> None:
        """API.md: a spooled file rolls over when truncate() grows it past max_size.

        The standard library checks only an explicit size; a bare truncate() sets
        the size to the position, so ours rolls over first for it too.
        """
        config = self.config
        assert config is not None
        file = self.expected
        if self.kind != "SpooledTemporaryFile" or file.closed or file._rolled:
            return
        with contextlib.suppress(Exception):  # then the truncate raises too
            if file.tell() > config.max_size:
                file.rollover()

    def stdlib_keeps_file(self) -> bool:
        config = self.config
        assert config is not None
        on_close = config.delete_on_close or not STDLIB_HAS_DELETE_ON_CLOSE
        return not (config.delete and (self.exited or (self.closed and on_close)))

    def ours_keeps_file(self) -> bool:
        config = self.config
        assert config is not None
        return not (
            config.delete and (self.exited or (self.closed and config.delete_on_close))
        )

    def expected_listing(self) -> list[str]:
        if self.names is None:
            return []
        stdlib_name, our_name = self.names
        listing = []
        if self.stdlib_keeps_file():
            listing.append(os.path.basename(stdlib_name))
        if self.ours_keeps_file():
            listing.append(os.path.basename(our_name))
        return sorted(listing)

    def compare_bytes(self) -> None:
        """Flush both; they must hold the same bytes (positions untouched)."""
        if self.same("flush")[0] != "ok":
            return
        expected_file = self.expected_file
        if self.kind == "SpooledTemporaryFile":
            expected_file = self.expected._file
        assert raw_bytes(self.actual.wrapped) == raw_bytes(expected_file)

    # -- opening ------------------------------------------------------------------

    def open_stdlib(self, config: Config) -> Any:
        options = config.options()
        if self.kind == "TemporaryFile":
            return tempfile.TemporaryFile(dir=self.directory, **options)
        if self.kind == "NamedTemporaryFile":
            if STDLIB_HAS_DELETE_ON_CLOSE:
                options["delete_on_close"] = config.delete_on_close
            return tempfile.NamedTemporaryFile(
                dir=self.directory, delete=config.delete, **options
            )
        return Spooled313(config.max_size, dir=str(self.directory), **options)

    def open_ours(self, config: Config) -> Any:
        options = config.options()
        if self.kind == "TemporaryFile":
            return atf.TemporaryFile(dir=self.directory, **options)
        if self.kind == "NamedTemporaryFile":
            return atf.NamedTemporaryFile(
                dir=self.directory,
                delete=config.delete,
                delete_on_close=config.delete_on_close,
                **options,
            )
        return atf.SpooledTemporaryFile(config.max_size, dir=self.directory, **options)

    @initialize(data=st.data())
    def open_files(self, data: st.DataObject) -> None:
        config = data.draw(configs(self.kind), label="config")
        self.config = config
        self.expected = self.open_stdlib(config).__enter__()
        try:
            self.our_block = self.portal.wrap_async_context_manager(
                self.open_ours(config)
            )
            self.actual = self.our_block.__enter__()
        except BaseException:
            self.expected.__exit__(None, None, None)
            self.exited = True
            raise
        if self.kind == "NamedTemporaryFile":
            self.names = (self.expected.name, self.actual.name)
            for name in self.names:
                assert os.path.dirname(name) == str(self.directory)

    # -- writing ------------------------------------------------------------------

    @precondition(is_binary)
    @rule(payload=byte_payloads)
    def write_bytes(self, payload: Payload) -> None:
        self.same("write", lambda: (build(payload),))

    @precondition(is_text)
    @rule(payload=text_payloads)
    def write_text(self, payload: Payload) -> None:
        self.same("write", lambda: (build(payload),))

    @precondition(is_binary)
    @rule(payloads=st.lists(byte_payloads, max_size=4), as_iterator=st.booleans())
    def writelines_bytes(self, payloads: list[Payload], as_iterator: bool) -> None:
        def make_args() -> tuple[Any, ...]:
            lines = [build(payload) for payload in payloads]
            return (iter(lines) if as_iterator else lines,)

        self.same("writelines", make_args)

    @precondition(is_text)
    @rule(payloads=st.lists(text_payloads, max_size=4), as_iterator=st.booleans())
    def writelines_text(self, payloads: list[Payload], as_iterator: bool) -> None:
        def make_args() -> tuple[Any, ...]:
            lines = [build(payload) for payload in payloads]
            return (iter(lines) if as_iterator else lines,)

        self.same("writelines", make_args)

    @precondition(is_open)
    @rule()
    def write_other_type(self) -> None:
        """str to a binary file, bytes to a text file: a TypeError on both."""
        self.same("write", lambda: (b"x" if is_text(self) else "x",))

    # -- reading ------------------------------------------------------------------

    @rule(size=read_sizes)
    def read(self, size: int | None) -> None:
        self.same("read", lambda: (size,))

    @rule()
    def read_all(self) -> None:
        self.same("read")

    @precondition(is_binary)
    @rule(size=st.one_of(st.just(()), int_sizes.map(lambda size: (size,))))
    def read1(self, size: tuple[int, ...]) -> None:
        self.same_short_read("read1", size, lambda value: value)

    @precondition(is_binary)
    @rule(size=buffer_sizes)
    def readinto(self, size: int) -> None:
        self.same("readinto", lambda: (size,))

    @precondition(is_binary)
    @rule(size=buffer_sizes)
    def readinto1(self, size: int) -> None:
        self.same_short_read("readinto1", (size,), lambda value: value[1][: value[0]])

    def same_short_read(
        self, name: str, args: tuple[Any, ...], data_of: Callable[[Any], bytes]
    ) -> None:
        """read1 and readinto1: the same bytes, perhaps not as many of them.

        "At most one raw read": how much that gives depends on what the file's
        buffer held (the standard library's fills st_blksize at a time, ours read
        ahead further), so the counts may differ.  The bytes may not, nor may
        one side find the end where the other does not; the shorter side then
        reads on to where the longer one is, so that the session goes on alike.
        """
        expected = self.run_expected(name, args)
        actual = self.portal.call(run_ours, self.actual, name, args)
        if "raised" in (expected[0], actual[0]):
            assert actual == expected, f"{name}{args!r}"
            return
        expected_data, actual_data = data_of(expected[1]), data_of(actual[1])
        assert bool(actual_data) == bool(expected_data), f"{name}{args!r}"
        gap = len(actual_data) - len(expected_data)
        if gap > 0:
            expected_data += self.expected.read(gap)
        elif gap < 0:
            actual_data += self.portal.call(self.actual.read, -gap)
        assert actual_data == expected_data, f"{name}{args!r}"

    @precondition(is_binary)
    @rule(size=read_sizes)
    def readline_bytes(self, size: int | None) -> None:
        self.same("readline", lambda: (size,))

    @precondition(is_text)
    @rule(size=st.one_of(int_sizes, st.none()))
    def readline_text(self, size: int | None) -> None:
        # TextIOWrapper.readline(None) is a TypeError.
        self.same("readline", lambda: (size,))

    @rule(hint=st.one_of(st.none(), st.integers(-1, 40), st.just(9000)))
    def readlines(self, hint: int | None) -> None:
        self.same("readlines", lambda: (hint,))

    @rule()
    def next_line(self) -> None:
        """One step of ``async for``: the stdlib's readline(), or the end."""
        self.same("next_line")

    # -- positions ----------------------------------------------------------------

    @rule(target=positions)
    def tell(self) -> Any:
        outcome = self.same("tell")
        return outcome[1] if outcome[0] == "ok" else multiple()

    @rule(position=positions)
    def seek_told(self, position: int) -> None:
        # A cookie told before a truncate may point past the end (or, in text
        # mode, into decoder state the data no longer has): the same on both.
        self.same("seek", lambda: (position,))

    @precondition(is_binary)
    @rule(offset=offsets, whence=whences)
    def seek_bytes(self, offset: int, whence: int) -> None:
        self.same("seek", lambda: (offset, whence))

    @precondition(is_text)
    @rule(whence=whences)
    def seek_text(self, whence: int) -> None:
        # Text files allow seek(0) from the start, the position and the end.
        self.same("seek", lambda: (0, whence))

    @precondition(is_text)
    @rule(
        offset=st.integers(-3, 3).filter(bool),
        whence=st.sampled_from([os.SEEK_CUR, os.SEEK_END]),
    )
    def seek_text_refused(self, offset: int, whence: int) -> None:
        # Nonzero relative seeks are refused (io.UnsupportedOperation).
        self.same("seek", lambda: (offset, whence))

    @precondition(is_text)
    @rule(offset=st.integers(-3, -1))
    def seek_text_negative(self, offset: int) -> None:
        self.same("seek", lambda: (offset,))

    @rule(size=truncate_sizes)
    def truncate(self, size: int | None) -> None:
        self.same("truncate", lambda: (size,))

    @rule()
    def truncate_bare(self) -> None:
        self.same("truncate")

    # -- the rest -----------------------------------------------------------------

    @rule()
    def flush(self) -> None:
        self.compare_bytes()

    @rule()
    def fileno(self) -> None:
        expected = self.run_expected("fileno", ())
        actual = self.portal.call(run_ours, self.actual, "fileno", ())
        assert (actual[0], actual[1:] if actual[0] == "raised" else ()) == (
            expected[0],
            expected[1:] if expected[0] == "raised" else (),
        )
        if actual[0] != "ok":
            return
        fd, expected_fd = actual[1], expected[1]
        assert type(fd) is int
        assert fd != expected_fd
        assert fd in open_descriptors()
        status, expected_status = os.fstat(fd), os.fstat(expected_fd)
        assert stat.S_ISREG(status.st_mode)
        assert stat.S_IMODE(status.st_mode) == stat.S_IMODE(expected_status.st_mode)
        assert stat.S_IMODE(status.st_mode) == 0o600
        assert status.st_nlink == expected_status.st_nlink
        assert status.st_dev == os.stat(self.directory).st_dev
        if self.kind == "NamedTemporaryFile":
            assert os.path.samestat(status, os.stat(self.actual.name))
        else:
            assert self.actual.name == fd
            assert status.st_nlink == 0

    @precondition(is_open)
    @rule()
    def close(self) -> None:
        """Close both mid-session; the steps after it must fail alike."""
        if self.names is None or not self.ours_keeps_file_after_close():
            self.compare_bytes()  # the last chance to see the data
        expected = run_stdlib(self.expected, "close", ())
        actual = self.portal.call(run_ours, self.actual, "aclose", ())
        self.closed = True
        assert actual == expected
        if self.names is not None and self.ours_keeps_file_after_close():
            self.compare_kept_files()

    def ours_keeps_file_after_close(self) -> bool:
        config = self.config
        assert config is not None
        return not (config.delete and config.delete_on_close)

    def compare_kept_files(self) -> None:
        """Both kept named files, closed, hold the same bytes."""
        assert self.names is not None
        stdlib_name, our_name = self.names
        if not os.path.exists(stdlib_name):
            return  # Python < 3.12 deleted it on close
        assert Path(our_name).read_bytes() == Path(stdlib_name).read_bytes()

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def attributes_agree(self) -> None:
        config = self.config
        if config is None:
            return
        assert self.actual.closed is self.expected.closed is self.closed
        assert self.actual.mode == self.expected.mode
        if config.text:
            for name in ("encoding", "errors", "newlines"):
                ours = attribute(self.actual, name)
                assert ours == attribute(self.expected_file, name), name
        name, expected_name = self.actual.name, self.expected.name
        assert type(name) is type(expected_name)
        if self.kind == "TemporaryFile":
            assert type(name) is int

    @invariant()
    def listing_agrees(self) -> None:
        if self.config is None:
            return
        assert sorted(os.listdir(self.directory)) == self.expected_listing()

    # -- the end ----------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            try:
                if self.config is not None and not self.closed:
                    self.compare_bytes()
                    self.same("seek", lambda: (0,))
                    self.same("read")
            finally:
                self.exit_both()
            if self.config is None:
                return
            self.closed = self.exited = True
            assert self.actual.closed
            assert self.expected.closed
            if self.names is not None and self.ours_keeps_file():
                self.compare_kept_files()
            assert sorted(os.listdir(self.directory)) == self.expected_listing()
            leaked = open_descriptors() - self.descriptors_before
            assert not leaked, f"leaked descriptors: {sorted(leaked)}"
        finally:
            # What delete=False kept goes too.
            shutil.rmtree(self.directory)

    def exit_both(self) -> None:
        """Leave both ``with`` blocks (ours: ``async with``)."""
        if self.exited:
            return
        self.exited = True
        try:
            if self.our_block is not None:
                self.our_block.__exit__(None, None, None)
        finally:
            if self.expected is not None:
                self.expected.__exit__(None, None, None)


class TemporaryFileMachine(FileMachine):
    kind = "TemporaryFile"


class NamedTemporaryFileMachine(FileMachine):
    kind = "NamedTemporaryFile"


class SpooledTemporaryFileMachine(FileMachine):
    kind = "SpooledTemporaryFile"

    @rule()
    def rollover(self) -> None:
        self.same("rollover")

    @invariant()
    def rolled_agrees(self) -> None:
        config = self.config
        if config is None:
            return
        assert self.actual.rolled is self.expected._rolled
        assert self.actual.max_size == config.max_size
        if not self.actual.rolled:
            assert self.actual.name is None


MACHINES = [
    pytest.param(TemporaryFileMachine, id="TemporaryFile"),
    pytest.param(NamedTemporaryFileMachine, id="NamedTemporaryFile"),
    pytest.param(SpooledTemporaryFileMachine, id="SpooledTemporaryFile"),
]


@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_random_sessions_match_stdlib(
    machine: type[FileMachine],
    backend: tuple[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    name, options = backend
    with start_blocking_portal(name, options) as portal:
        context = Context(portal, tmp_path)
        run_state_machine_as_test(
            lambda: machine(context),  # type: ignore[arg-type]
            settings=MACHINE_SETTINGS,
        )
    assert os.listdir(tmp_path) == []
