"""Differential tests: our files behave as the standard library's, awaited.

The same operations are applied, in the same order, to a ``tempfile`` object and to
ours.  After every step the outcomes must be equal: the value returned (bytes read,
counts written, positions, sizes, buffers filled by ``readinto``), or, when the step
fails, the exact type of the exception.  Hypothesis generates random sequences; the
named tests pin the cases one by one.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import Spooled313, failed_rollover_undone

import anyio_tempfile as atf

pytestmark = pytest.mark.anyio

# These tests look at the file system directly and synchronously on purpose: what
# they check is its state at that instant, which a worker thread would not change.
# ruff: noqa: ASYNC230, ASYNC240

Kind = Literal["TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile"]
KINDS: list[Kind] = ["TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile"]

# Small, so that random sequences cross it (and sit exactly on it) often.
MAX_SIZE = 16

# One step: a method name and its arguments.  "readinto"/"readinto1" take the
# size of a fresh bytearray; "seek_told" seeks to the k-th position told so far;
# "write_other_type" writes str to a binary file or bytes to a text file.
Op = tuple[str, tuple[Any, ...]]
# ("ok", value) or ("raised", exception type).
Outcome = tuple[str, Any]


# -- opening both sides -------------------------------------------------------------


def open_stdlib(kind: Kind, directory: Path, options: dict[str, Any]) -> Any:
    if kind == "TemporaryFile":
        return tempfile.TemporaryFile(dir=directory, **options)
    if kind == "NamedTemporaryFile":
        return tempfile.NamedTemporaryFile(dir=directory, **options)
    return Spooled313(MAX_SIZE, dir=str(directory), **options)


def open_ours(kind: Kind, directory: Path, options: dict[str, Any]) -> Any:
    if kind == "TemporaryFile":
        return atf.TemporaryFile(dir=directory, **options)
    if kind == "NamedTemporaryFile":
        return atf.NamedTemporaryFile(dir=directory, **options)
    return atf.SpooledTemporaryFile(MAX_SIZE, dir=directory, **options)


def stdlib_rolled(file: Any) -> bool:
    rolled: bool = cast(Any, file)._rolled
    return rolled


# -- applying one step --------------------------------------------------------------


def other_type(options: dict[str, Any]) -> str | bytes:
    return "x" if "b" in options.get("mode", "w+b") else b"x"


def run_stdlib_step(file: Any, op: Op, options: dict[str, Any]) -> Outcome:
    name, args = op
    with failed_rollover_undone(file):
        return _run_stdlib_step(file, name, args, options)


def _run_stdlib_step(
    file: Any, name: str, args: tuple[Any, ...], options: dict[str, Any]
) -> Outcome:
    try:
        if name in ("readinto", "readinto1"):
            buffer = bytearray(args[0])
            count = getattr(file, name)(buffer)
            return ("ok", (count, bytes(buffer)))
        if name == "write_other_type":
            return ("ok", file.write(other_type(options)))
        if name == "rollover":
            return ("ok", file.rollover())
        return ("ok", getattr(file, name)(*args))
    except Exception as exc:
        return ("raised", type(exc))


async def run_our_step(file: Any, op: Op, options: dict[str, Any]) -> Outcome:
    name, args = op
    try:
        if name in ("readinto", "readinto1"):
            buffer = bytearray(args[0])
            count = await getattr(file, name)(buffer)
            return ("ok", (count, bytes(buffer)))
        if name == "write_other_type":
            return ("ok", await file.write(other_type(options)))
        if name == "rollover":
            return ("ok", await file.rollover())
        return ("ok", await getattr(file, name)(*args))
    except Exception as exc:
        return ("raised", type(exc))


def follow_documented_rollover(kind: Kind, file: Any, op: Op) -> None:
    """Apply API.md's one documented difference to the standard library's file.

    API.md: a spooled file rolls over when ``truncate()`` grows it past
    ``max_size``.  The standard library checks only an explicit ``size``; a bare
    ``truncate()`` sets the size to the position, so ours counts it as that size
    and rolls over first, as for an explicit size.  Called before the step, so
    the truncate then acts on the file on disk, as it does on ours (and a file
    on disk grows to the position, where a ``BytesIO`` would not).
    """
    if (
        kind != "SpooledTemporaryFile"
        or op[0] != "truncate"
        or op[1] not in ((), (None,))
        or stdlib_rolled(file)
        or file.closed
    ):
        return
    try:
        position = file.tell()
    except OSError:
        return  # a text file mid-iteration: ours cannot tell either
    if position > MAX_SIZE:
        file.rollover()


async def assert_same_outcomes(
    kind: Kind, directory: Path, options: dict[str, Any], ops: list[Op]
) -> None:
    """Run ``ops`` on both sides; every outcome, and the final content, equal."""
    told: list[int] = []
    with open_stdlib(kind, directory, options) as expected_file:
        async with open_ours(kind, directory, options) as actual_file:
            for step, op in enumerate(ops):
                if op[0] == "seek_told":
                    op = ("seek", (told[op[1][0] % len(told)] if told else 0, 0))
                follow_documented_rollover(kind, expected_file, op)
                expected = run_stdlib_step(expected_file, op, options)
                actual = await run_our_step(actual_file, op, options)
                assert actual == expected, f"step {step}: {op!r} in {ops!r}"
                if op[0] == "tell" and expected[0] == "ok":
                    told.append(expected[1])
                if kind == "SpooledTemporaryFile":
                    assert actual_file.rolled == stdlib_rolled(expected_file), (
                        f"rolled differs after step {step}: {op!r} in {ops!r}"
                    )
            final_ops: list[Op] = [("seek", (0,)), ("read", ())]
            for op in final_ops:
                expected = run_stdlib_step(expected_file, op, options)
                actual = await run_our_step(actual_file, op, options)
                assert actual == expected, f"final content after {ops!r}"
    assert sorted(os.listdir(directory)) == []


# -- random sequences ---------------------------------------------------------------

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
TEXT_PIECES = ["", "a", "bc", "\n", "\r", "\r\n", "é", "€", "𝄞", "xyz12", "0123456789"]

sizes = st.one_of(st.none(), st.integers(min_value=-1, max_value=30))
# TextIOWrapper.readline(None) is a TypeError (pinned by a named test below).
line_sizes = st.integers(min_value=-1, max_value=30)
positions = st.integers(min_value=-3, max_value=40)
whences = st.sampled_from([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END])


def operations(pieces: list[Any], *, text: bool) -> st.SearchStrategy[list[Op]]:
    data = st.lists(st.sampled_from(pieces), max_size=4).map(
        lambda parts: ("" if text else b"").join(parts)
    )
    steps: list[st.SearchStrategy[Op]] = [
        st.tuples(st.just("write"), st.tuples(data)),
        st.tuples(st.just("write"), st.tuples(data)),
        st.tuples(st.just("writelines"), st.tuples(st.lists(data, max_size=3))),
        st.tuples(st.just("read"), st.tuples(sizes)),
        st.tuples(st.just("readline"), st.tuples(line_sizes if text else sizes)),
        st.tuples(st.just("readlines"), st.tuples(st.integers(-1, 30))),
        st.tuples(st.just("seek"), st.tuples(st.just(0), whences)),
        st.tuples(st.just("tell"), st.just(())),
        st.tuples(st.just("truncate"), st.tuples(st.one_of(st.none(), positions))),
        st.tuples(st.just("truncate"), st.just(())),
        st.tuples(st.just("flush"), st.just(())),
        st.tuples(st.just("write_other_type"), st.just(())),
    ]
    if text:
        # Cookies from tell() are opaque: seek to those told, or to small byte
        # offsets (which may land inside a character, identically on both sides).
        steps.append(st.tuples(st.just("seek_told"), st.tuples(st.integers(0, 10))))
        steps.append(st.tuples(st.just("seek"), st.tuples(positions)))
        steps.append(st.tuples(st.just("seek"), st.tuples(st.integers(-2, 2), whences)))
    else:
        steps.append(st.tuples(st.just("seek"), st.tuples(positions, whences)))
        steps.append(st.tuples(st.just("read1"), st.tuples(st.integers(-1, 30))))
        steps.append(st.tuples(st.just("readinto"), st.tuples(st.integers(0, 30))))
        steps.append(st.tuples(st.just("readinto1"), st.tuples(st.integers(0, 30))))
    steps.append(st.tuples(st.just("rollover"), st.just(())))
    return st.lists(st.one_of(steps), max_size=25)


RANDOM_SETTINGS = settings(
    max_examples=70,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def applicable(kind: Kind, ops: list[Op]) -> list[Op]:
    """The steps of ``ops`` that the random tests apply to ``kind``.

    Only spooled files have ``rollover()``.  A bare ``truncate()`` of a spooled
    file is left to ``test_spooled_bare_truncate_past_max_size_rolls_over``: where
    it grows the file past ``max_size`` API.md asks for a rollover that the
    standard library does not do, and one known difference must not hide others.
    """
    if kind != "SpooledTemporaryFile":
        return [op for op in ops if op[0] != "rollover"]
    return [op for op in ops if not (op[0] == "truncate" and op[1] in ((), (None,)))]


# The sequences are drawn by @given, before the test's coroutine starts: a draw
# inside the event loop would let Hypothesis' control-flow exception meet the
# backend's task group.
@pytest.mark.parametrize("kind", KINDS)
@RANDOM_SETTINGS
@given(ops=operations(BYTE_PIECES, text=False))
async def test_random_binary_operations_match_stdlib(
    kind: Kind, scratch_dir: Path, ops: list[Op]
) -> None:
    await assert_same_outcomes(
        kind, scratch_dir, {"mode": "w+b"}, applicable(kind, ops)
    )


@pytest.mark.parametrize("newline", [None, "", "\n", "\r", "\r\n"])
@pytest.mark.parametrize("kind", KINDS)
@RANDOM_SETTINGS
@given(ops=operations(TEXT_PIECES, text=True))
async def test_random_text_operations_match_stdlib(
    kind: Kind, newline: str | None, scratch_dir: Path, ops: list[Op]
) -> None:
    options = {"mode": "w+", "encoding": "utf-8", "newline": newline}
    await assert_same_outcomes(kind, scratch_dir, options, applicable(kind, ops))


# -- named sequences ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_write_returns_count_and_read_returns_the_bytes(
    kind: Kind, scratch_dir: Path
) -> None:
    ops: list[Op] = [
        ("write", (b"hello\r\nworld\n",)),
        ("write", (bytearray(b"!"),)),
        ("write", (memoryview(b"\x00\xff"),)),
        ("tell", ()),
        ("seek", (0,)),
        ("read", (5,)),
        ("read", ()),
        ("read", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_seek_and_tell_results_match(kind: Kind, scratch_dir: Path) -> None:
    ops: list[Op] = [
        ("write", (b"0123456789",)),
        ("seek", (3,)),
        ("tell", ()),
        ("seek", (2, os.SEEK_CUR)),
        ("seek", (-4, os.SEEK_END)),
        ("read", (2,)),
        ("seek", (30,)),
        ("tell", ()),
        ("read", ()),
        ("seek", (0, os.SEEK_END)),
    ]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_seek_past_end_then_write_zero_fills(
    kind: Kind, scratch_dir: Path
) -> None:
    ops: list[Op] = [("seek", (5,)), ("write", (b"z",)), ("seek", (0,)), ("read", ())]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_truncate_results_match(kind: Kind, scratch_dir: Path) -> None:
    ops: list[Op] = [
        ("write", (b"0123456789",)),
        ("truncate", (4,)),
        ("tell", ()),
        ("seek", (2,)),
        ("truncate", ()),
        ("truncate", (None,)),
        ("seek", (0,)),
        ("read", ()),
        ("truncate", (12,)),
        ("seek", (0,)),
        ("read", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize(
    "options",
    [{"mode": "w+b"}, {"mode": "w+", "encoding": "utf-8"}],
    ids=["binary", "text"],
)
async def test_spooled_bare_truncate_past_max_size_rolls_over(
    options: dict[str, Any], scratch_dir: Path
) -> None:
    # API.md: "or truncate() grows it past max_size"; the standard library only
    # checks an explicit size, follow_documented_rollover applies the rule to it.
    ops: list[Op] = [("seek", (MAX_SIZE + 1,)), ("truncate", ()), ("tell", ())]
    await assert_same_outcomes("SpooledTemporaryFile", scratch_dir, options, ops)


@pytest.mark.parametrize("size", [MAX_SIZE, MAX_SIZE + 1])
async def test_spooled_truncate_rolls_over_only_past_max_size(
    size: int, scratch_dir: Path
) -> None:
    ops: list[Op] = [("write", (b"abc",)), ("truncate", (size,)), ("tell", ())]
    await assert_same_outcomes("SpooledTemporaryFile", scratch_dir, {}, ops)


@pytest.mark.parametrize("size", [MAX_SIZE - 1, MAX_SIZE, MAX_SIZE + 1])
async def test_spooled_write_rolls_over_only_past_max_size(
    size: int, scratch_dir: Path
) -> None:
    ops: list[Op] = [
        ("write", (b"x" * size,)),
        ("tell", ()),
        ("seek", (0,)),
        ("read", ()),
    ]
    await assert_same_outcomes("SpooledTemporaryFile", scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_readline_and_readlines_results_match(
    kind: Kind, scratch_dir: Path
) -> None:
    ops: list[Op] = [
        ("write", (b"one\ntwo\r\nthree\rfour\n\nlast",)),
        ("seek", (0,)),
        ("readline", ()),
        ("readline", (2,)),
        ("readline", (-1,)),
        ("readline", (None,)),
        ("readlines", (3,)),
        ("seek", (0,)),
        ("readlines", ()),
        ("readline", ()),
        ("readlines", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_read1_and_readinto_results_match(kind: Kind, scratch_dir: Path) -> None:
    ops: list[Op] = [
        ("write", (b"abcdefghij",)),
        ("seek", (0,)),
        ("read1", (3,)),
        ("readinto", (4,)),
        ("readinto1", (2,)),
        ("readinto", (8,)),
        ("read1", ()),
        ("readinto", (0,)),
        ("seek", (0,)),
        ("read1", (-1,)),
    ]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_writelines_result_and_content_match(
    kind: Kind, scratch_dir: Path
) -> None:
    ops: list[Op] = [
        ("writelines", ([b"a\n", bytearray(b"b"), b"", b"c\r\n"],)),
        ("tell", ()),
        ("seek", (0,)),
        ("readlines", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


# -- failures: the same exception type --------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_seek_with_bad_whence_raises_as_stdlib(
    kind: Kind, scratch_dir: Path
) -> None:
    ops: list[Op] = [
        ("write", (b"abc",)),
        ("seek", (0, 3)),
        ("seek", (0, -1)),
        ("tell", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_negative_seek_raises_as_stdlib(kind: Kind, scratch_dir: Path) -> None:
    ops: list[Op] = [("write", (b"abc",)), ("seek", (-1,)), ("tell", ())]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_negative_truncate_raises_as_stdlib(
    kind: Kind, scratch_dir: Path
) -> None:
    ops: list[Op] = [
        ("write", (b"abc",)),
        ("truncate", (-1,)),
        ("seek", (0,)),
        ("read", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_write_str_to_binary_file_raises_type_error(
    kind: Kind, scratch_dir: Path
) -> None:
    ops: list[Op] = [("write", ("text",)), ("writelines", (["text"],)), ("tell", ())]
    await assert_same_outcomes(kind, scratch_dir, {}, ops)
    async with open_ours(kind, scratch_dir, {}) as file:
        with pytest.raises(TypeError):
            await file.write("text")


@pytest.mark.parametrize("kind", KINDS)
async def test_write_bytes_to_text_file_raises_type_error(
    kind: Kind, scratch_dir: Path
) -> None:
    options = {"mode": "w+", "encoding": "utf-8"}
    ops: list[Op] = [("write", (b"bytes",)), ("tell", ())]
    await assert_same_outcomes(kind, scratch_dir, options, ops)
    async with open_ours(kind, scratch_dir, options) as file:
        with pytest.raises(TypeError):
            await file.write(b"bytes")


@pytest.mark.parametrize("mode", ["wb", "ab"])
@pytest.mark.parametrize("kind", ["TemporaryFile", "NamedTemporaryFile"])
async def test_read_on_write_only_binary_file_raises_as_stdlib(
    kind: Kind, mode: str, scratch_dir: Path
) -> None:
    ops: list[Op] = [
        ("write", (b"abc",)),
        ("read", ()),
        ("read1", ()),
        ("readline", ()),
        ("readinto", (2,)),
        ("seek", (0,)),
    ]
    await assert_same_outcomes(kind, scratch_dir, {"mode": mode}, ops)
    async with open_ours(kind, scratch_dir, {"mode": mode}) as file:
        with pytest.raises(io.UnsupportedOperation):
            await file.read()


@pytest.mark.parametrize("kind", ["TemporaryFile", "NamedTemporaryFile"])
async def test_read_on_write_only_text_file_raises_as_stdlib(
    kind: Kind, scratch_dir: Path
) -> None:
    options = {"mode": "w", "encoding": "utf-8"}
    ops: list[Op] = [("write", ("abc",)), ("read", ()), ("readline", ()), ("tell", ())]
    await assert_same_outcomes(kind, scratch_dir, options, ops)


@pytest.mark.parametrize("mode", ["rb", "r"])
@pytest.mark.parametrize("kind", ["TemporaryFile", "NamedTemporaryFile"])
async def test_write_on_read_only_file_raises_as_stdlib(
    kind: Kind, mode: str, scratch_dir: Path
) -> None:
    options: dict[str, Any] = {"mode": mode}
    if mode == "r":
        options["encoding"] = "utf-8"
    ops: list[Op] = [
        ("write", ("abc" if mode == "r" else b"abc",)),
        ("truncate", (0,)),
        ("read", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, options, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_text_nonzero_relative_seek_raises_as_stdlib(
    kind: Kind, scratch_dir: Path
) -> None:
    options = {"mode": "w+", "encoding": "utf-8"}
    ops: list[Op] = [
        ("write", ("abc",)),
        ("seek", (1, os.SEEK_CUR)),
        ("seek", (-1, os.SEEK_END)),
        ("seek", (0, os.SEEK_CUR)),
        ("seek", (0, os.SEEK_END)),
        ("seek", (-1,)),
    ]
    await assert_same_outcomes(kind, scratch_dir, options, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_text_readline_with_none_size_raises_as_stdlib(
    kind: Kind, scratch_dir: Path
) -> None:
    # TextIOWrapper.readline takes an int only (binary readline also takes None).
    options = {"mode": "w+", "encoding": "utf-8"}
    ops: list[Op] = [("write", ("a\nb",)), ("seek", (0,)), ("readline", (None,))]
    await assert_same_outcomes(kind, scratch_dir, options, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_read_after_close_raises_value_error(
    kind: Kind, scratch_dir: Path
) -> None:
    with open_stdlib(kind, scratch_dir, {}) as expected_file:
        pass
    with pytest.raises(ValueError, match="closed") as expected:
        expected_file.read()
    file = await open_ours(kind, scratch_dir, {})
    await file.aclose()
    with pytest.raises(ValueError, match="closed") as actual:
        await file.read()
    assert actual.type is expected.type


# -- text mode ----------------------------------------------------------------------


@pytest.mark.parametrize("newline", [None, "", "\n", "\r", "\r\n"])
@pytest.mark.parametrize("kind", KINDS)
async def test_text_newline_translation_matches_stdlib(
    kind: Kind, newline: str | None, scratch_dir: Path
) -> None:
    options = {"mode": "w+", "encoding": "utf-8", "newline": newline}
    ops: list[Op] = [
        ("write", ("a\nb\r\nc\rd",)),
        ("tell", ()),
        ("seek", (0,)),
        ("readline", ()),
        ("readline", ()),
        ("readlines", ()),
        ("seek", (0,)),
        ("read", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, options, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_non_ascii_text_round_trips_with_same_positions(
    kind: Kind, scratch_dir: Path
) -> None:
    options = {"mode": "w+", "encoding": "utf-8"}
    ops: list[Op] = [
        ("write", ("héllo wörld €𝄞\n",)),
        ("tell", ()),
        ("seek", (0,)),
        ("read", (3,)),
        ("tell", ()),
        ("read", (4,)),
        ("seek_told", (1,)),
        ("read", ()),
        ("seek", (2,)),
        ("read", ()),
    ]
    await assert_same_outcomes(kind, scratch_dir, options, ops)


@pytest.mark.parametrize("kind", KINDS)
async def test_text_on_disk_bytes_are_encoded_utf8_with_crlf(
    kind: Kind, scratch_dir: Path
) -> None:
    async with open_ours(
        kind, scratch_dir, {"mode": "w+", "encoding": "utf-8", "newline": "\r\n"}
    ) as file:
        await file.write("é\n€\n")
        await file.flush()
        if kind == "SpooledTemporaryFile":
            await file.rollover()
        assert os.pread(await file.fileno(), 100, 0) == "é\r\n€\r\n".encode()


@pytest.mark.parametrize("kind", KINDS)
async def test_text_newlines_attribute_matches_stdlib(
    kind: Kind, scratch_dir: Path
) -> None:
    options = {"mode": "w+", "encoding": "utf-8", "newline": None}
    # Written with newline=None, "\n" becomes os.linesep ("\n"); "\r" stays.
    with open_stdlib(kind, scratch_dir, options) as expected_wrapper:
        # The stdlib's NamedTemporaryFile wrapper caches the first value of a
        # non-int attribute it forwards (a stale ``newlines``): ask its file.
        expected_file = getattr(expected_wrapper, "file", expected_wrapper)
        expected_before = expected_file.newlines
        expected_file.write("a\r\nb\nc\rd")
        expected_file.seek(0)
        expected_file.read()
        expected_after = expected_file.newlines
    async with open_ours(kind, scratch_dir, options) as file:
        actual_before = file.newlines
        await file.write("a\r\nb\nc\rd")
        await file.seek(0)
        await file.read()
        actual_after = file.newlines
    assert (actual_before, actual_after) == (expected_before, expected_after)
    assert actual_after == ("\r", "\n", "\r\n")


@pytest.mark.parametrize("errors", [None, "strict", "replace", "surrogateescape"])
@pytest.mark.parametrize("kind", KINDS)
async def test_text_encoding_and_errors_attributes_match_stdlib(
    kind: Kind, errors: str | None, scratch_dir: Path
) -> None:
    options = {"mode": "w+", "encoding": "utf-8", "errors": errors}
    with open_stdlib(kind, scratch_dir, options) as expected_file:
        expected = (expected_file.encoding, expected_file.errors)
    async with open_ours(kind, scratch_dir, options) as file:
        assert (file.encoding, file.errors) == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_default_text_encoding_matches_stdlib(
    kind: Kind, scratch_dir: Path
) -> None:
    with open_stdlib(kind, scratch_dir, {"mode": "w+"}) as expected_file:
        expected = expected_file.encoding
    async with open_ours(kind, scratch_dir, {"mode": "w+"}) as file:
        assert file.encoding == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_errors_handler_applies_as_in_stdlib(
    kind: Kind, scratch_dir: Path
) -> None:
    options = {"mode": "w+", "encoding": "ascii", "errors": "replace"}
    ops: list[Op] = [("write", ("é€a",)), ("seek", (0,)), ("read", ())]
    await assert_same_outcomes(kind, scratch_dir, options, ops)
    strict = {"mode": "w+", "encoding": "ascii"}
    await assert_same_outcomes(
        kind, scratch_dir, strict, [("write", ("é",)), ("tell", ())]
    )


# -- iteration ----------------------------------------------------------------------

ITERATION_DATA = "first\nsecond\r\nthird\rfourth\n\nlast"


@pytest.mark.parametrize(
    ("options", "line_count"),
    [
        ({"mode": "w+b"}, 5),
        ({"mode": "w+", "encoding": "utf-8", "newline": None}, 6),
        ({"mode": "w+", "encoding": "utf-8", "newline": ""}, 6),
        ({"mode": "w+", "encoding": "utf-8", "newline": "\r\n"}, 5),
    ],
    ids=["binary", "text-universal", "text-untranslated", "text-crlf"],
)
@pytest.mark.parametrize("kind", KINDS)
async def test_async_for_yields_the_same_lines_as_for(
    kind: Kind, options: dict[str, Any], line_count: int, scratch_dir: Path
) -> None:
    data: str | bytes = ITERATION_DATA
    if "b" in options["mode"]:
        data = ITERATION_DATA.encode()
    with open_stdlib(kind, scratch_dir, options) as expected_file:
        expected_file.write(data)
        expected_file.seek(0)
        expected = list(expected_file)
        expected_position = expected_file.tell()
    async with open_ours(kind, scratch_dir, options) as file:
        await file.write(data)
        await file.seek(0)
        actual = [line async for line in file]
        actual_position = await file.tell()
    assert actual == expected
    assert len(actual) == line_count
    assert actual_position == expected_position


@pytest.mark.parametrize("kind", KINDS)
async def test_async_for_on_empty_file_yields_nothing(
    kind: Kind, scratch_dir: Path
) -> None:
    async with open_ours(kind, scratch_dir, {}) as file:
        assert [line async for line in file] == []


# -- attributes ---------------------------------------------------------------------

MODES: list[dict[str, Any]] = [
    {"mode": "w+b"},
    {"mode": "wb"},
    {"mode": "rb"},
    {"mode": "r+b"},
    {"mode": "ab"},
    {"mode": "a+b"},
    {"mode": "w+b", "buffering": 0},
    {"mode": "w+", "encoding": "utf-8"},
    {"mode": "w", "encoding": "utf-8"},
    {"mode": "r", "encoding": "utf-8"},
    {"mode": "a+", "encoding": "utf-8"},
]


@pytest.mark.parametrize("options", MODES, ids=lambda options: repr(options))
@pytest.mark.parametrize("kind", ["TemporaryFile", "NamedTemporaryFile"])
async def test_mode_attribute_matches_stdlib(
    kind: Kind, options: dict[str, Any], scratch_dir: Path
) -> None:
    with open_stdlib(kind, scratch_dir, options) as expected_file:
        expected = expected_file.mode
    async with open_ours(kind, scratch_dir, options) as file:
        assert file.mode == expected


@pytest.mark.parametrize(
    "options",
    [{"mode": "w+b"}, {"mode": "w+", "encoding": "utf-8"}],
    ids=["binary", "text"],
)
async def test_spooled_mode_attribute_matches_stdlib_before_and_after_rollover(
    options: dict[str, Any], scratch_dir: Path
) -> None:
    with open_stdlib("SpooledTemporaryFile", scratch_dir, options) as expected_file:
        expected_in_memory = expected_file.mode
        expected_file.rollover()
        expected_on_disk = expected_file.mode
    async with open_ours("SpooledTemporaryFile", scratch_dir, options) as file:
        in_memory = file.mode
        await file.rollover()
        on_disk = file.mode
    assert (in_memory, on_disk) == (expected_in_memory, expected_on_disk)


async def test_temporary_file_name_is_its_descriptor(scratch_dir: Path) -> None:
    with tempfile.TemporaryFile(dir=scratch_dir) as expected_file:
        assert type(expected_file.name) is int
    async with atf.TemporaryFile(dir=scratch_dir) as file:
        assert type(file.name) is int
        assert file.name == await file.fileno()


@pytest.mark.parametrize("prefix", [None, "pre", b"pre"])
async def test_named_file_name_is_absolute_path_in_dir(
    prefix: str | bytes | None, scratch_dir: Path
) -> None:
    directory: str | bytes = (
        os.fsencode(scratch_dir) if isinstance(prefix, bytes) else str(scratch_dir)
    )
    stdlib_named: Any = tempfile.NamedTemporaryFile
    with stdlib_named(dir=directory, prefix=prefix) as expected_file:
        expected_type = type(expected_file.name)
    async with atf.NamedTemporaryFile(dir=directory, prefix=prefix) as file:
        name = file.name
        assert type(name) is expected_type
        assert os.path.isabs(name)
        assert os.path.dirname(name) == directory
        assert os.listdir(directory) == [os.path.basename(name)]


async def test_named_file_name_is_absolute_for_relative_dir(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(scratch_dir.parent)
    with tempfile.NamedTemporaryFile(dir=scratch_dir.name) as expected_file:
        assert os.path.dirname(expected_file.name) == str(scratch_dir)
    async with atf.NamedTemporaryFile(dir=scratch_dir.name) as file:
        assert os.path.dirname(file.name) == str(scratch_dir)


async def test_spooled_name_is_none_in_memory_and_descriptor_on_disk(
    scratch_dir: Path,
) -> None:
    with tempfile.SpooledTemporaryFile(dir=str(scratch_dir)) as expected_file:
        expected_in_memory = expected_file.name
        expected_file.rollover()
        expected_on_disk_type = type(expected_file.name)
    async with atf.SpooledTemporaryFile(dir=scratch_dir) as file:
        assert file.name is expected_in_memory is None
        fd = await file.fileno()
        assert type(file.name) is expected_on_disk_type is int
        assert file.name == fd


@pytest.mark.parametrize("kind", KINDS)
async def test_closed_attribute_follows_aclose(kind: Kind, scratch_dir: Path) -> None:
    with open_stdlib(kind, scratch_dir, {}) as expected_file:
        expected_open = expected_file.closed
    expected_closed = expected_file.closed
    file = await open_ours(kind, scratch_dir, {})
    actual_open = file.closed
    await file.aclose()
    assert (
        (actual_open, file.closed) == (expected_open, expected_closed) == (False, True)
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_closed_after_async_with_exit(kind: Kind, scratch_dir: Path) -> None:
    async with open_ours(kind, scratch_dir, {}) as file:
        pass
    assert file.closed


@pytest.mark.parametrize("kind", KINDS)
async def test_wrapped_is_the_synchronous_file(kind: Kind, scratch_dir: Path) -> None:
    async with open_ours(kind, scratch_dir, {}) as file:
        await file.write(b"via async")
        await file.flush()
        wrapped = file.wrapped
        wrapped.seek(0)
        assert wrapped.read() == b"via async"


# -- module functions ---------------------------------------------------------------


async def test_gettempdir_matches_stdlib() -> None:
    assert await atf.gettempdir() == tempfile.gettempdir()
    assert await atf.gettempdirb() == tempfile.gettempdirb()


def test_gettempprefix_matches_stdlib() -> None:
    assert atf.gettempprefix() == tempfile.gettempprefix() == "tmp"
    assert atf.gettempprefixb() == tempfile.gettempprefixb() == b"tmp"


async def test_mkstemp_returns_descriptor_and_absolute_path(scratch_dir: Path) -> None:
    expected_fd, expected_path = tempfile.mkstemp(dir=scratch_dir, suffix=".x")
    os.close(expected_fd)
    os.unlink(expected_path)
    fd, path = await atf.mkstemp(dir=scratch_dir, suffix=".x")
    try:
        assert type(fd) is int
        assert type(path) is type(expected_path) is str
        assert (
            os.path.dirname(path) == os.path.dirname(expected_path) == str(scratch_dir)
        )
        assert re.fullmatch(r"tmp[a-z0-9_]{8}\.x", os.path.basename(path))
        assert os.path.samestat(os.fstat(fd), os.stat(path))
    finally:
        os.close(fd)
        os.unlink(path)


async def test_mkstemp_path_is_absolute_for_relative_dir(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(scratch_dir.parent)
    expected_fd, expected_path = tempfile.mkstemp(dir=scratch_dir.name)
    os.close(expected_fd)
    os.unlink(expected_path)
    fd, path = await atf.mkstemp(dir=scratch_dir.name)
    os.close(fd)
    os.unlink(path)
    assert os.path.dirname(path) == os.path.dirname(expected_path) == str(scratch_dir)


async def test_mkstemp_leaves_the_file_for_the_caller(scratch_dir: Path) -> None:
    fd, path = await atf.mkstemp(dir=scratch_dir)
    os.write(fd, b"kept")
    os.close(fd)
    with open(path, "rb") as kept:
        assert kept.read() == b"kept"
    os.unlink(path)


async def test_mkdtemp_returns_absolute_path_for_relative_dir(
    scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(scratch_dir.parent)
    # Absolute since 3.12 (gh-51574); the package follows 3.13 on every version.
    expected = os.path.abspath(tempfile.mkdtemp(dir=scratch_dir.name))
    os.rmdir(expected)
    path = await atf.mkdtemp(dir=scratch_dir.name)
    assert os.path.isdir(path)
    os.rmdir(path)
    assert os.path.dirname(path) == os.path.dirname(expected) == str(scratch_dir)


@pytest.mark.parametrize("use_bytes", [False, True], ids=["str", "bytes"])
async def test_mkdtemp_result_type_follows_arguments(
    use_bytes: bool, scratch_dir: Path
) -> None:
    directory: str | bytes = os.fsencode(scratch_dir) if use_bytes else str(scratch_dir)
    expected = tempfile.mkdtemp(dir=directory)
    os.rmdir(expected)
    path = await atf.mkdtemp(dir=directory)
    os.rmdir(path)
    assert type(path) is type(expected)


@pytest.mark.parametrize("use_bytes", [False, True], ids=["str", "bytes"])
async def test_temporary_directory_gives_path_of_argument_type(
    use_bytes: bool, scratch_dir: Path
) -> None:
    directory: str | bytes = os.fsencode(scratch_dir) if use_bytes else str(scratch_dir)
    with tempfile.TemporaryDirectory(dir=directory) as expected:
        expected_type = type(expected)
    async with atf.TemporaryDirectory(dir=directory) as path:
        assert type(path) is expected_type
        assert os.path.isdir(path)
        assert os.path.dirname(path) == directory
    assert not os.path.exists(path)
