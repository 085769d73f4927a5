"""TemporaryFile and NamedTemporaryFile: construction, the file object, delete rules.

Every test that creates a file passes ``dir=`` the ``no_leaks`` directory, so a file
left behind or a descriptor left open fails the test even where the test itself only
checks something else.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

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
# ruff: noqa: ASYNC230, ASYNC240


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def read_by_name(name: str | bytes | Path) -> bytes:
    with open(name, "rb") as reopened:
        return reopened.read()


# --------------------------------------------------------------------------- #
# The constructors: awaitable, or an async context manager
# --------------------------------------------------------------------------- #


async def test_awaited_temporary_file_is_open(no_leaks: Path) -> None:
    f = await atf.TemporaryFile(dir=no_leaks)
    assert f.closed is False
    await f.aclose()
    assert f.closed is True


async def test_temporary_file_constructor_async_with_closes_on_exit(
    no_leaks: Path,
) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        assert f.closed is False
    assert f.closed is True


async def test_awaited_named_file_is_open(no_leaks: Path) -> None:
    f = await atf.NamedTemporaryFile(dir=no_leaks)
    assert f.closed is False
    await f.aclose()
    assert f.closed is True


async def test_named_file_constructor_async_with_closes_on_exit(
    no_leaks: Path,
) -> None:
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        assert f.closed is False
    assert f.closed is True


async def test_file_object_async_with_yields_the_file_itself(no_leaks: Path) -> None:
    f = await atf.TemporaryFile(dir=no_leaks)
    async with f as entered:
        assert entered is f
    assert f.closed is True


async def test_file_object_async_with_closes_the_file(no_leaks: Path) -> None:
    f = await atf.NamedTemporaryFile(dir=no_leaks)
    async with f:
        assert f.closed is False
    assert f.closed is True


async def test_temporary_file_closes_when_the_body_raises(no_leaks: Path) -> None:
    f = await atf.TemporaryFile(dir=no_leaks)
    with pytest.raises(LookupError, match="from the body"):
        async with f:
            raise LookupError("from the body")
    assert f.closed is True


async def test_constructor_object_cannot_be_awaited_twice(no_leaks: Path) -> None:
    constructor = atf.TemporaryFile(dir=no_leaks)
    f = await constructor
    try:
        with pytest.raises(RuntimeError):
            await constructor
    finally:
        await f.aclose()


async def test_constructor_object_cannot_be_entered_after_being_awaited(
    no_leaks: Path,
) -> None:
    constructor = atf.NamedTemporaryFile(dir=no_leaks)
    f = await constructor
    try:
        with pytest.raises(RuntimeError):
            async with constructor:
                pass
        # The failed second entry must not have deleted or closed the first file.
        assert f.closed is False
        assert listing(no_leaks) == [os.path.basename(f.name)]
    finally:
        await f.aclose()


# --------------------------------------------------------------------------- #
# TemporaryFile specifics
# --------------------------------------------------------------------------- #


async def test_temporary_file_has_no_name_in_its_directory(no_leaks: Path) -> None:
    # O_TMPFILE on Linux: the file never appears in the directory listing.
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"invisible")
        await f.flush()
        assert listing(no_leaks) == []


async def test_temporary_file_name_is_its_descriptor(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        descriptor = await f.fileno()
        assert type(f.name) is int
        assert f.name == descriptor


async def test_temporary_file_releases_its_descriptor_on_close(
    no_leaks: Path,
) -> None:
    f = await atf.TemporaryFile(dir=no_leaks)
    link = f"/proc/self/fd/{await f.fileno()}"
    target = os.readlink(link)
    assert target.startswith(f"{no_leaks}/")
    await f.aclose()
    # The number may already be reused by another descriptor: look at what it is.
    assert not os.path.lexists(link) or os.readlink(link) != target


@pytest.mark.parametrize("mode", ["w+b", "w+", "r+b", "x+b", "a+"])
async def test_temporary_file_mode_matches_the_stdlib(
    no_leaks: Path, mode: str
) -> None:
    with tempfile.TemporaryFile(mode, dir=no_leaks) as stdlib_file:
        expected = stdlib_file.mode
    async with atf.TemporaryFile(mode, dir=no_leaks) as f:
        assert f.mode == expected


async def test_temporary_file_reads_back_exact_bytes(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        assert await f.write(b"\x00binary\xffdata\n") == 13
        assert await f.seek(0) == 0
        assert await f.read() == b"\x00binary\xffdata\n"


async def test_text_temporary_file_reads_back_exact_text(no_leaks: Path) -> None:
    async with atf.TemporaryFile("w+", encoding="utf-8", dir=no_leaks) as f:
        assert await f.write("h\u00e9llo\n") == 6
        await f.seek(0)
        assert await f.read() == "h\u00e9llo\n"
        assert f.encoding == "utf-8"


async def test_text_file_encodes_with_the_given_encoding(no_leaks: Path) -> None:
    async with atf.TemporaryFile("w+", encoding="utf-16-le", dir=no_leaks) as f:
        await f.write("ab")
        await f.flush()
        assert os.pread(await f.fileno(), 100, 0) == b"a\x00b\x00"


async def test_text_file_translates_newlines_per_newline_argument(
    no_leaks: Path,
) -> None:
    async with atf.TemporaryFile(
        "w+", encoding="ascii", newline="\r\n", dir=no_leaks
    ) as f:
        await f.write("a\nb\n")
        await f.flush()
        assert os.pread(await f.fileno(), 100, 0) == b"a\r\nb\r\n"


async def test_text_file_applies_the_errors_handler(no_leaks: Path) -> None:
    async with atf.TemporaryFile(
        "w+", encoding="ascii", errors="replace", dir=no_leaks
    ) as f:
        await f.write("a\u00e9b")
        await f.flush()
        assert f.errors == "replace"
        assert os.pread(await f.fileno(), 100, 0) == b"a?b"


async def test_text_file_records_the_newlines_it_read(no_leaks: Path) -> None:
    async with atf.TemporaryFile("w+", encoding="ascii", dir=no_leaks) as f:
        os.pwrite(await f.fileno(), b"a\r\nb\n", 0)
        assert await f.read() == "a\nb\n"
        assert f.newlines == ("\n", "\r\n")


async def test_unbuffered_file_writes_straight_to_disk(no_leaks: Path) -> None:
    async with atf.TemporaryFile(buffering=0, dir=no_leaks) as f:
        await f.write(b"now")
        assert os.pread(await f.fileno(), 100, 0) == b"now"


async def test_buffered_write_reaches_disk_on_flush(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"later")
        assert os.pread(await f.fileno(), 100, 0) == b""
        await f.flush()
        assert os.pread(await f.fileno(), 100, 0) == b"later"


async def test_wrapped_is_the_underlying_file(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        assert f.wrapped.fileno() == await f.fileno()


async def test_blocking_calls_borrow_from_the_given_limiter(no_leaks: Path) -> None:
    limiter = anyio.CapacityLimiter(1)
    async with atf.TemporaryFile(dir=no_leaks, limiter=limiter) as f:
        await f.write(b"limited")
        await f.seek(0)
        results: list[bytes] = []

        async def read_all() -> None:
            results.append(await f.read())

        async with anyio.create_task_group() as task_group, limiter:
            task_group.start_soon(read_all)
            await anyio.wait_all_tasks_blocked()
            # The read waits for the token we hold: it has not run.
            assert limiter.statistics().tasks_waiting == 1
            assert results == []
        assert results == [b"limited"]


# --------------------------------------------------------------------------- #
# The file object's methods
# --------------------------------------------------------------------------- #


async def test_read_with_size_reads_at_most_size(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"abcdef")
        await f.seek(0)
        assert await f.read(4) == b"abcd"
        assert await f.read(4) == b"ef"
        assert await f.read(4) == b""


async def test_read1_reads_at_most_size(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"abcdef")
        await f.seek(0)
        assert await f.read1(3) == b"abc"
        assert await f.read1() == b"def"


async def test_readinto_fills_the_buffer(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"abcdef")
        await f.seek(0)
        buffer = bytearray(4)
        assert await f.readinto(buffer) == 4
        assert buffer == bytearray(b"abcd")


async def test_readinto1_fills_the_buffer(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"abcdef")
        await f.seek(2)
        buffer = bytearray(10)
        assert await f.readinto1(buffer) == 4
        assert buffer == bytearray(b"cdef\x00\x00\x00\x00\x00\x00")


async def test_readline_reads_one_line_or_size(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"first\nsecond\n")
        await f.seek(0)
        assert await f.readline() == b"first\n"
        assert await f.readline(3) == b"sec"
        assert await f.readline() == b"ond\n"
        assert await f.readline() == b""


async def test_readlines_reads_all_lines(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"a\nb\nc")
        await f.seek(0)
        assert await f.readlines() == [b"a\n", b"b\n", b"c"]


async def test_readlines_stops_after_hint(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"aa\nbb\ncc\n")
        await f.seek(0)
        assert await f.readlines(4) == [b"aa\n", b"bb\n"]


async def test_writelines_writes_every_line(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.writelines([b"a\n", b"b", b"c\n"])
        await f.seek(0)
        assert await f.read() == b"a\nbc\n"


async def test_seek_and_tell_report_the_position(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"0123456789")
        assert await f.tell() == 10
        assert await f.seek(3) == 3
        assert await f.seek(2, os.SEEK_CUR) == 5
        assert await f.seek(-1, os.SEEK_END) == 9
        assert await f.read() == b"9"


async def test_truncate_cuts_the_file_and_returns_the_size(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"0123456789")
        assert await f.truncate(4) == 4
        await f.seek(0)
        assert await f.read() == b"0123"


async def test_truncate_without_size_cuts_at_the_position(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"0123456789")
        await f.seek(6)
        assert await f.truncate() == 6
        assert os.fstat(await f.fileno()).st_size == 6


async def test_async_for_yields_each_line(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"one\ntwo\nthree")
        await f.seek(0)
        assert [line async for line in f] == [b"one\n", b"two\n", b"three"]


async def test_async_for_yields_text_lines_in_text_mode(no_leaks: Path) -> None:
    async with atf.TemporaryFile("w+", encoding="utf-8", dir=no_leaks) as f:
        await f.write("\u00e9\nz")
        await f.seek(0)
        assert [line async for line in f] == ["\u00e9\n", "z"]


async def test_async_for_on_an_empty_file_yields_nothing(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        assert [line async for line in f] == []


async def test_read_after_close_raises_value_error(no_leaks: Path) -> None:
    f = await atf.TemporaryFile(dir=no_leaks)
    await f.aclose()
    with pytest.raises(ValueError, match="closed file"):
        await f.read()


async def test_write_after_close_raises_value_error(no_leaks: Path) -> None:
    f = await atf.NamedTemporaryFile(dir=no_leaks)
    await f.aclose()
    with pytest.raises(ValueError, match="closed file"):
        await f.write(b"late")


async def test_second_aclose_is_a_no_op(no_leaks: Path) -> None:
    f = await atf.NamedTemporaryFile(dir=no_leaks)
    await f.aclose()
    await f.aclose()
    assert f.closed is True


# --------------------------------------------------------------------------- #
# Static types (checked by mypy --strict and pyright; no-ops at run time)
# --------------------------------------------------------------------------- #


async def test_default_temporary_file_is_a_bytes_file(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        assert_type(await f.write(b"a\nb\n"), int)
        assert_type(await f.seek(0), int)
        assert_type(await f.readline(), bytes)
        assert_type(await f.readlines(), list[bytes])
        await f.seek(0)
        assert_type(await f.read(), bytes)
        assert_type(await f.read1(), bytes)
        assert_type(await f.tell(), int)
        assert_type(await f.truncate(), int)
        assert_type(await f.fileno(), int)
        async for line in f:
            assert_type(line, bytes)


async def test_text_temporary_file_is_a_str_file(no_leaks: Path) -> None:
    async with atf.TemporaryFile("w+", dir=no_leaks) as f:
        assert_type(await f.write("a\nb\n"), int)
        await f.seek(0)
        assert_type(await f.readline(), str)
        assert_type(await f.readlines(), list[str])
        await f.seek(0)
        assert_type(await f.read(), str)
        await f.seek(0)
        async for line in f:
            assert_type(line, str)
        assert await f.read() == ""


async def test_awaited_temporary_file_keeps_its_type(no_leaks: Path) -> None:
    binary = await atf.TemporaryFile(dir=no_leaks)
    text = await atf.TemporaryFile(mode="w+", dir=no_leaks)
    try:
        assert_type(await binary.read(), bytes)
        assert_type(await text.read(), str)
    finally:
        await binary.aclose()
        await text.aclose()


async def test_named_file_is_typed_by_mode(no_leaks: Path) -> None:
    async with (
        atf.NamedTemporaryFile(dir=no_leaks) as binary,
        atf.NamedTemporaryFile("w+", dir=no_leaks) as text,
    ):
        assert_type(await binary.read(), bytes)
        assert_type(await text.read(), str)


async def test_binary_file_with_explicit_mode_is_a_bytes_file(no_leaks: Path) -> None:
    async with atf.TemporaryFile("r+b", dir=no_leaks) as f:
        assert_type(await f.read(), bytes)
        assert await f.read() == b""


# --------------------------------------------------------------------------- #
# NamedTemporaryFile names
# --------------------------------------------------------------------------- #


async def test_named_file_name_is_an_absolute_str_in_dir(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        assert isinstance(f.name, str)
        assert os.path.isabs(f.name)
        assert os.path.dirname(f.name) == str(no_leaks)
        assert listing(no_leaks) == [os.path.basename(f.name)]


async def test_named_file_name_is_bytes_for_bytes_dir(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(dir=os.fsencode(no_leaks)) as f:
        assert isinstance(f.name, bytes)
        assert os.path.dirname(f.name) == os.fsencode(no_leaks)
        assert listing(no_leaks) == [os.fsdecode(os.path.basename(f.name))]


async def test_named_file_name_is_bytes_for_bytes_prefix(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(
        prefix=b"up-", suffix=b".bin", dir=os.fsencode(no_leaks)
    ) as f:
        assert isinstance(f.name, bytes)
        base = os.path.basename(f.name)
        assert base.startswith(b"up-")
        assert base.endswith(b".bin")


async def test_named_file_in_default_dir_uses_gettempdir(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(prefix="atf-default-dir-") as f:
        assert isinstance(f.name, str)
        assert os.path.dirname(f.name) == tempfile.gettempdir()
        assert os.path.basename(f.name).startswith("atf-default-dir-")
    assert not os.path.exists(f.name)


async def test_named_file_default_prefix_is_gettempprefix(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        assert isinstance(f.name, str)
        assert os.path.basename(f.name).startswith(tempfile.gettempprefix())


async def test_named_file_accepts_pathlike_dir(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        assert isinstance(f.name, str)
        assert os.path.dirname(f.name) == os.fspath(no_leaks)


async def test_named_file_name_has_prefix_and_suffix(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(
        prefix="report-", suffix=".csv", dir=no_leaks
    ) as f:
        assert isinstance(f.name, str)
        base = os.path.basename(f.name)
        assert base.startswith("report-")
        assert base.endswith(".csv")
        assert len(base) > len("report-.csv")


async def test_named_file_made_in_relative_dir_has_absolute_name(
    no_leaks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(no_leaks.parent)
    async with atf.NamedTemporaryFile(dir=no_leaks.name) as f:
        assert isinstance(f.name, str)
        assert os.path.dirname(f.name) == str(no_leaks)


async def test_named_file_is_readable_by_name_while_open(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(dir=no_leaks) as f:
        await f.write(b"shared")
        await f.flush()
        assert read_by_name(f.name) == b"shared"


async def test_named_text_file_writes_encoded_text(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(
        "w+", encoding="utf-8", newline="", dir=no_leaks
    ) as f:
        await f.write("caf\u00e9\r\n")
        await f.flush()
        assert read_by_name(f.name) == b"caf\xc3\xa9\r\n"


# --------------------------------------------------------------------------- #
# NamedTemporaryFile delete semantics: delete x delete_on_close
# --------------------------------------------------------------------------- #

# delete, delete_on_close, still there after aclose(), still there after the block
DELETE_MATRIX = [
    pytest.param(True, True, False, False, id="delete-delete_on_close"),
    pytest.param(True, False, True, False, id="delete-keep_on_close"),
    pytest.param(False, True, True, True, id="keep-delete_on_close"),
    pytest.param(False, False, True, True, id="keep-keep_on_close"),
]


def remove_if_kept(name: str | bytes) -> None:
    # delete=False files are ours to remove, so that no_leaks sees an empty dir.
    if os.path.exists(name):
        os.unlink(name)


@pytest.mark.parametrize(
    ("delete", "delete_on_close", "kept_after_close", "kept_after_block"),
    DELETE_MATRIX,
)
async def test_named_file_delete_matrix_with_constructor_async_with(
    no_leaks: Path,
    delete: bool,
    delete_on_close: bool,
    kept_after_close: bool,
    kept_after_block: bool,
) -> None:
    async with atf.NamedTemporaryFile(
        dir=no_leaks, delete=delete, delete_on_close=delete_on_close
    ) as f:
        base = os.path.basename(f.name)
        await f.write(b"matrix")
        await f.aclose()
        assert listing(no_leaks) == ([base] if kept_after_close else [])
        if kept_after_close:
            assert read_by_name(f.name) == b"matrix"
    assert listing(no_leaks) == ([base] if kept_after_block else [])
    if kept_after_block:
        assert read_by_name(f.name) == b"matrix"
    remove_if_kept(f.name)


@pytest.mark.parametrize(
    ("delete", "delete_on_close", "kept_after_close", "kept_after_block"),
    DELETE_MATRIX,
)
async def test_named_file_delete_matrix_with_awaited_file_async_with(
    no_leaks: Path,
    delete: bool,
    delete_on_close: bool,
    kept_after_close: bool,
    kept_after_block: bool,
) -> None:
    f = await atf.NamedTemporaryFile(
        dir=no_leaks, delete=delete, delete_on_close=delete_on_close
    )
    base = os.path.basename(f.name)
    async with f:
        await f.write(b"matrix")
        await f.aclose()
        assert listing(no_leaks) == ([base] if kept_after_close else [])
        if kept_after_close:
            assert read_by_name(f.name) == b"matrix"
    assert listing(no_leaks) == ([base] if kept_after_block else [])
    if kept_after_block:
        assert read_by_name(f.name) == b"matrix"
    remove_if_kept(f.name)


@pytest.mark.parametrize(
    ("delete", "delete_on_close", "kept_after_close", "kept_after_block"),
    DELETE_MATRIX,
)
async def test_named_file_delete_matrix_with_aclose_only(
    no_leaks: Path,
    delete: bool,
    delete_on_close: bool,
    kept_after_close: bool,
    kept_after_block: bool,
) -> None:
    f = await atf.NamedTemporaryFile(
        dir=no_leaks, delete=delete, delete_on_close=delete_on_close
    )
    base = os.path.basename(f.name)
    await f.write(b"matrix")
    await f.aclose()
    assert f.closed is True
    assert listing(no_leaks) == ([base] if kept_after_close else [])
    if kept_after_close:
        assert read_by_name(f.name) == b"matrix"
    remove_if_kept(f.name)


@pytest.mark.parametrize(
    ("delete", "delete_on_close", "kept_after_close", "kept_after_block"),
    DELETE_MATRIX,
)
async def test_named_file_delete_matrix_when_block_exits_while_open(
    no_leaks: Path,
    delete: bool,
    delete_on_close: bool,
    kept_after_close: bool,
    kept_after_block: bool,
) -> None:
    async with atf.NamedTemporaryFile(
        dir=no_leaks, delete=delete, delete_on_close=delete_on_close
    ) as f:
        base = os.path.basename(f.name)
        await f.write(b"unflushed")
    assert f.closed is True
    assert listing(no_leaks) == ([base] if kept_after_block else [])
    if kept_after_block:
        # Exiting the block closes the file, which flushes what was buffered.
        assert read_by_name(f.name) == b"unflushed"
    remove_if_kept(f.name)


async def test_named_file_kept_on_close_can_be_reopened_by_name(
    no_leaks: Path,
) -> None:
    # The reason delete_on_close=False exists: close it, hand the name to someone
    # who opens it themselves, and still have it removed at the end of the block.
    async with atf.NamedTemporaryFile(dir=no_leaks, delete_on_close=False) as f:
        await f.write(b"for a subprocess")
        await f.aclose()
        with open(f.name, "r+b") as reopened:
            assert reopened.read() == b"for a subprocess"
            reopened.write(b"!")
        assert read_by_name(f.name) == b"for a subprocess!"
    assert listing(no_leaks) == []


@pytest.mark.parametrize("delete_on_close", [True, False])
async def test_named_file_removed_when_the_body_raises(
    no_leaks: Path, delete_on_close: bool
) -> None:
    with pytest.raises(LookupError, match="from the body"):  # noqa: PT012 - the body
        async with atf.NamedTemporaryFile(
            dir=no_leaks, delete_on_close=delete_on_close
        ) as f:
            await f.write(b"doomed")
            raise LookupError("from the body")
    assert listing(no_leaks) == []


async def test_named_file_kept_when_the_body_raises_with_delete_false(
    no_leaks: Path,
) -> None:
    with pytest.raises(LookupError, match="from the body"):  # noqa: PT012 - the body
        async with atf.NamedTemporaryFile(dir=no_leaks, delete=False) as f:
            await f.write(b"kept")
            raise LookupError("from the body")
    (kept,) = listing(no_leaks)
    assert read_by_name(no_leaks / kept) == b"kept"
    os.unlink(no_leaks / kept)


@pytest.mark.parametrize("delete_on_close", [True, False])
async def test_named_file_already_gone_at_block_exit_is_no_error(
    no_leaks: Path, delete_on_close: bool
) -> None:
    async with atf.NamedTemporaryFile(
        dir=no_leaks, delete_on_close=delete_on_close
    ) as f:
        os.unlink(f.name)
    assert f.closed is True
    assert listing(no_leaks) == []


async def test_named_file_already_gone_at_aclose_is_no_error(no_leaks: Path) -> None:
    f = await atf.NamedTemporaryFile(dir=no_leaks)
    os.unlink(f.name)
    await f.aclose()
    assert f.closed is True
    assert listing(no_leaks) == []


async def test_named_file_gone_after_aclose_is_no_error_at_block_exit(
    no_leaks: Path,
) -> None:
    async with atf.NamedTemporaryFile(dir=no_leaks, delete_on_close=False) as f:
        await f.aclose()
        os.unlink(f.name)
    assert listing(no_leaks) == []
