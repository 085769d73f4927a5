"""Wrong arguments: a clear exception of the standard library's type, nothing leaked.

Where the standard library rejects the same call, the expected exception type is
computed by making that call; ``no_leaks`` checks that no descriptor stays open
and no entry stays in ``dir``.  For a spooled file the reference is the standard
library's ``TemporaryFile`` with the same arguments (its ``SpooledTemporaryFile``
passes them on at rollover, and a half-built one breaks in ``__del__``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import anyio_tempfile as atf

pytestmark = pytest.mark.anyio

# These tests look at the file system directly and synchronously on purpose: what
# they check is its state at that instant, which a worker thread would not change.
# ruff: noqa: ASYNC240

FILE_KINDS = ["TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile"]
ALL_KINDS = [*FILE_KINDS, "mkstemp", "mkdtemp", "TemporaryDirectory"]
REPOSITORY = Path(atf.__file__).resolve().parent.parent


def stdlib_create(kind: str, arguments: dict[str, Any]) -> None:
    """Create and destroy one ``kind`` with the standard library."""
    if kind in ("TemporaryFile", "SpooledTemporaryFile"):
        tempfile.TemporaryFile(**arguments).close()
    elif kind == "NamedTemporaryFile":
        tempfile.NamedTemporaryFile(**arguments).close()
    elif kind == "mkstemp":
        fd, path = tempfile.mkstemp(**arguments)
        os.close(fd)
        os.unlink(path)
    elif kind == "mkdtemp":
        os.rmdir(tempfile.mkdtemp(**arguments))
    else:
        tempfile.TemporaryDirectory(**arguments).cleanup()


def stdlib_exception(kind: str, arguments: dict[str, Any]) -> type[Exception]:
    try:
        stdlib_create(kind, arguments)
    except Exception as exc:
        return type(exc)
    pytest.fail(f"the standard library accepts {kind}(**{arguments!r})")


async def create(kind: str, arguments: dict[str, Any]) -> None:
    """Create and destroy one ``kind`` with our package (a spooled one rolls over)."""
    if kind == "TemporaryFile":
        file: Any = await atf.TemporaryFile(**arguments)
        await file.aclose()
    elif kind == "NamedTemporaryFile":
        file = await atf.NamedTemporaryFile(**arguments)
        await file.aclose()
    elif kind == "SpooledTemporaryFile":
        file = await atf.SpooledTemporaryFile(**arguments)
        try:
            await file.rollover()
        finally:
            await file.aclose()
    elif kind == "mkstemp":
        fd, path = await atf.mkstemp(**arguments)
        os.close(fd)
        os.unlink(path)
    elif kind == "mkdtemp":
        os.rmdir(await atf.mkdtemp(**arguments))
    else:
        async with atf.TemporaryDirectory(**arguments):
            pass


async def assert_raises_exactly(
    expected: type[Exception], kind: str, arguments: dict[str, Any]
) -> None:
    with pytest.raises(expected) as raised:
        await create(kind, arguments)
    assert raised.type is expected, raised.value


# -- prefix, suffix and dir ---------------------------------------------------------

Arguments = Callable[[Path], dict[str, Any]]

MIXED: dict[str, Arguments] = {
    "bytes-prefix-str-suffix": lambda d: {"prefix": b"p", "suffix": "s", "dir": None},
    "str-prefix-bytes-dir": lambda d: {"prefix": "p", "dir": os.fsencode(d)},
    "bytes-suffix-str-dir": lambda d: {"suffix": b"s", "dir": str(d)},
    "bytes-prefix-path-dir": lambda d: {"prefix": b"p", "dir": d},
    "str-suffix-bytes-prefix-bytes-dir": lambda d: {
        "suffix": "s",
        "prefix": b"p",
        "dir": os.fsencode(d),
    },
}


@pytest.mark.parametrize("case", MIXED)
@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_mixing_str_and_bytes_is_type_error(
    kind: str, case: str, no_leaks: Path
) -> None:
    arguments = MIXED[case](no_leaks)
    expected = stdlib_exception(kind, arguments)
    assert expected is TypeError
    await assert_raises_exactly(TypeError, kind, arguments)


FORBIDDEN: dict[str, dict[str, Any]] = {
    "slash-in-prefix": {"prefix": "a/b"},
    "leading-slash-in-suffix": {"suffix": "/x"},
    "dotdot-prefix": {"prefix": "../"},
    "nul-in-prefix": {"prefix": "a\0"},
    "nul-in-suffix": {"suffix": "\0"},
    "bytes-slash-in-prefix": {"prefix": b"a/"},
    "bytes-nul-in-suffix": {"suffix": b"x\0"},
}


@pytest.mark.parametrize("case", FORBIDDEN)
@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_separator_or_nul_in_prefix_or_suffix_is_value_error(
    kind: str, case: str, no_leaks: Path
) -> None:
    arguments = dict(FORBIDDEN[case])
    given = [value for value in arguments.values() if value is not None]
    arguments["dir"] = (
        os.fsencode(no_leaks) if isinstance(given[0], bytes) else no_leaks
    )
    await assert_raises_exactly(ValueError, kind, arguments)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_prefix_that_names_an_existing_subdirectory_is_still_value_error(
    kind: str, no_leaks: Path
) -> None:
    # The standard library would create the file inside no_leaks/sub.
    subdirectory = no_leaks / "sub"
    subdirectory.mkdir()
    try:
        await assert_raises_exactly(
            ValueError, kind, {"prefix": "sub/", "dir": no_leaks}
        )
        assert os.listdir(subdirectory) == []
    finally:
        subdirectory.rmdir()


@pytest.mark.parametrize("value", [5, 1.5, ["tmp"]], ids=["int", "float", "list"])
@pytest.mark.parametrize("argument", ["prefix", "suffix", "dir"])
@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_non_path_prefix_suffix_or_dir_is_type_error(
    kind: str, argument: str, value: object, no_leaks: Path
) -> None:
    # The standard library raises TypeError for most of these (not for an unused
    # prefix under O_TMPFILE, nor for dir=5, an EBADF OSError): we always do.
    arguments: dict[str, Any] = {"dir": no_leaks, argument: value}
    await assert_raises_exactly(TypeError, kind, arguments)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_missing_dir_is_file_not_found(kind: str, no_leaks: Path) -> None:
    arguments = {"dir": no_leaks / "missing"}
    expected = stdlib_exception(kind, arguments)
    assert expected is FileNotFoundError
    await assert_raises_exactly(expected, kind, arguments)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_dangling_symlink_dir_is_file_not_found(
    kind: str, no_leaks: Path
) -> None:
    link = no_leaks / "dangling"
    link.symlink_to(no_leaks / "missing")
    try:
        arguments = {"dir": link}
        expected = stdlib_exception(kind, arguments)
        await assert_raises_exactly(expected, kind, arguments)
        assert os.listdir(no_leaks) == ["dangling"]
    finally:
        link.unlink()


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_dir_that_is_a_file_is_not_a_directory(kind: str, no_leaks: Path) -> None:
    a_file = no_leaks / "a-file"
    a_file.write_bytes(b"content")
    try:
        arguments = {"dir": a_file}
        expected = stdlib_exception(kind, arguments)
        assert expected is NotADirectoryError
        await assert_raises_exactly(expected, kind, arguments)
        assert a_file.read_bytes() == b"content"
    finally:
        a_file.unlink()


CHILD_IN_UNWRITABLE_DIR = """
import json, os, sys, tempfile, anyio
sys.path.insert(0, sys.argv[5])
from test_bad_input import create, stdlib_create

kind, directory, backend, uvloop = sys.argv[1:5]
probe = os.path.join(directory, "probe")
try:
    os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
except PermissionError:
    pass
else:
    os.unlink(probe)
    print(json.dumps({"meaningful": False}))
    sys.exit(0)

def outcome(function):
    try:
        function()
    except Exception as exc:
        return type(exc).__name__
    return None

fds_leaked = []

async def create_and_count():
    # Counted inside the loop: the event loop's own descriptors are not ours.
    before = set(os.listdir("/proc/self/fd"))
    try:
        await create(kind, {"dir": directory})
    finally:
        fds_leaked.extend(sorted(set(os.listdir("/proc/self/fd")) - before))

ours = outcome(lambda: anyio.run(
    create_and_count, backend=backend,
    backend_options={"use_uvloop": True} if uvloop == "1" else {},
))
print(json.dumps({
    "meaningful": True,
    "stdlib": outcome(lambda: stdlib_create(kind, {"dir": directory})),
    "ours": ours,
    "fds_leaked": fds_leaked,
    "left": os.listdir(directory),
}))
"""


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_unwritable_dir_is_permission_error(
    kind: str, no_leaks: Path, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    # Root ignores permission bits: the attempt runs in a child that keeps uid 0
    # (so it can still read this interpreter under /root) but drops every
    # capability, CAP_DAC_OVERRIDE included, with setpriv.
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed; as root, 0o500 would not stop us")
    backend, options = anyio_backend
    command = [
        "setpriv", "--inh-caps=-all", "--bounding-set=-all",
        sys.executable, "-c", CHILD_IN_UNWRITABLE_DIR,
        kind, str(no_leaks), backend, "1" if options.get("use_uvloop") else "0",
        str(Path(__file__).parent),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    no_leaks.chmod(0o500)
    try:
        result = await anyio.run_process(command, env=env, check=False)
    finally:
        no_leaks.chmod(0o700)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    report = json.loads(result.stdout)
    if not report["meaningful"]:
        pytest.skip("the child could still write to a 0o500 directory")
    assert report["stdlib"] == "PermissionError"
    assert report["ours"] == report["stdlib"]
    assert report["fds_leaked"] == []
    assert report["left"] == []


# -- mode, buffering, encoding, newline, errors -------------------------------------

# Each case, with the type io.open (hence the standard library) raises for it.
OPEN_ARGUMENTS: dict[str, tuple[dict[str, Any], type[Exception]]] = {
    "mode-q": ({"mode": "q"}, ValueError),
    "mode-rw": ({"mode": "rw"}, ValueError),
    "mode-empty": ({"mode": ""}, ValueError),
    "mode-U": ({"mode": "U"}, ValueError),
    "mode-text-and-binary": ({"mode": "rt+b"}, ValueError),
    "mode-not-a-str": ({"mode": 5}, TypeError),
    "binary-with-encoding": ({"mode": "wb", "encoding": "utf-8"}, ValueError),
    "binary-with-newline": ({"mode": "w+b", "newline": "\n"}, ValueError),
    "binary-with-errors": ({"mode": "w+b", "errors": "strict"}, ValueError),
    "unbuffered-text": ({"mode": "w+", "buffering": 0}, ValueError),
    "buffering-not-an-int": ({"buffering": "x"}, TypeError),
    "unknown-encoding": ({"mode": "w+", "encoding": "no-such-codec"}, LookupError),
    "encoding-not-a-str": ({"mode": "w+", "encoding": 5}, TypeError),
    "illegal-newline": ({"mode": "w+", "newline": "x"}, ValueError),
    "newline-not-a-str": ({"mode": "w+", "newline": 5}, TypeError),
    "errors-not-a-str": ({"mode": "w+", "encoding": "utf-8", "errors": 5}, TypeError),
}


@pytest.mark.parametrize("case", OPEN_ARGUMENTS)
@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_bad_open_argument_raises_as_io_open(
    kind: str, case: str, no_leaks: Path
) -> None:
    options, documented = OPEN_ARGUMENTS[case]
    arguments = {**options, "dir": no_leaks}
    if case == "mode-U" and sys.version_info < (3, 11):
        # 3.10 only deprecates "U" (a warning); 3.11+ refuses it, and the
        # package follows 3.13 on every version.
        expected: type[Exception] = documented
    else:
        expected = stdlib_exception(kind, arguments)
    assert expected is documented
    await assert_raises_exactly(expected, kind, arguments)


async def write_past_max_size(arguments: dict[str, Any]) -> None:
    """Open a spooled file with ``max_size=1`` and write until it rolls over."""
    binary = "b" in str(arguments.get("mode", "w+b"))
    file: Any = await atf.SpooledTemporaryFile(**{"max_size": 1, **arguments})
    try:
        await file.write(b"x" if binary else "x")
        await file.write(b"rolls over" if binary else "rolls over")
    finally:
        await file.aclose()


@pytest.mark.parametrize("case", OPEN_ARGUMENTS)
async def test_bad_spooled_argument_raises_at_the_latest_at_rollover(
    case: str, no_leaks: Path
) -> None:
    # The standard library's in-memory file notices some of these only at
    # rollover; we may reject them at construction, but never later.
    options, documented = OPEN_ARGUMENTS[case]
    arguments = {**options, "dir": no_leaks}
    with pytest.raises(documented) as raised:
        await write_past_max_size(arguments)
    assert raised.type is documented


@pytest.mark.parametrize("max_size", ["10", 1.5, None], ids=["str", "float", "none"])
async def test_max_size_that_is_not_an_int_is_type_error(
    max_size: Any, no_leaks: Path
) -> None:
    with pytest.raises(TypeError):
        await write_past_max_size({"max_size": max_size, "dir": no_leaks})


# -- use after close ----------------------------------------------------------------

BINARY_CALLS: dict[str, Callable[[Any], Any]] = {
    "read": lambda f: f.read(),
    "read-size": lambda f: f.read(1),
    "read1": lambda f: f.read1(),
    "readinto": lambda f: f.readinto(bytearray(1)),
    "readinto1": lambda f: f.readinto1(bytearray(1)),
    "readline": lambda f: f.readline(),
    "readlines": lambda f: f.readlines(),
    "write": lambda f: f.write(b"x"),
    "writelines": lambda f: f.writelines([b"x"]),
    "seek": lambda f: f.seek(0),
    "tell": lambda f: f.tell(),
    "truncate": lambda f: f.truncate(),
    "truncate-size": lambda f: f.truncate(0),
    "flush": lambda f: f.flush(),
    "fileno": lambda f: f.fileno(),
}
TEXT_CALLS: dict[str, Callable[[Any], Any]] = {
    "read": lambda f: f.read(),
    "readline": lambda f: f.readline(),
    "readlines": lambda f: f.readlines(),
    "write": lambda f: f.write("x"),
    "writelines": lambda f: f.writelines(["x"]),
    "seek": lambda f: f.seek(0),
    "tell": lambda f: f.tell(),
    "truncate": lambda f: f.truncate(),
    "flush": lambda f: f.flush(),
    "fileno": lambda f: f.fileno(),
}


def closed_stdlib_exception(mode: str, call: Callable[[Any], Any]) -> type[Exception]:
    encoding = None if "b" in mode else "utf-8"
    with tempfile.TemporaryFile(mode, encoding=encoding) as file:
        pass
    try:
        call(file)
    except Exception as exc:
        return type(exc)
    pytest.fail("the standard library's closed file accepted the call")


async def open_closed(kind: str, mode: str, directory: Path) -> Any:
    encoding = None if "b" in mode else "utf-8"
    if kind == "TemporaryFile":
        file: Any = await atf.TemporaryFile(mode, encoding=encoding, dir=directory)
    elif kind == "NamedTemporaryFile":
        file = await atf.NamedTemporaryFile(mode, encoding=encoding, dir=directory)
    else:
        file = await atf.SpooledTemporaryFile(0, mode, encoding=encoding, dir=directory)
    await file.aclose()
    return file


@pytest.mark.parametrize("call", BINARY_CALLS)
@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_binary_method_after_close_is_value_error(
    kind: str, call: str, no_leaks: Path
) -> None:
    expected = closed_stdlib_exception("w+b", BINARY_CALLS[call])
    assert issubclass(expected, ValueError)
    file = await open_closed(kind, "w+b", no_leaks)
    with pytest.raises(ValueError, match="closed") as raised:
        await BINARY_CALLS[call](file)
    assert raised.type is expected


@pytest.mark.parametrize("call", TEXT_CALLS)
@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_text_method_after_close_is_value_error(
    kind: str, call: str, no_leaks: Path
) -> None:
    expected = closed_stdlib_exception("w+", TEXT_CALLS[call])
    assert issubclass(expected, ValueError)
    file = await open_closed(kind, "w+", no_leaks)
    with pytest.raises(ValueError, match="closed") as raised:
        await TEXT_CALLS[call](file)
    assert raised.type is expected


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_async_for_after_close_is_value_error(kind: str, no_leaks: Path) -> None:
    file = await open_closed(kind, "w+b", no_leaks)
    with pytest.raises(ValueError, match="closed"):
        async for _line in file:
            pass


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_async_with_after_close_is_value_error(kind: str, no_leaks: Path) -> None:
    file = await open_closed(kind, "w+b", no_leaks)
    with pytest.raises(ValueError, match="closed"):
        async with file:
            pass


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_persist_after_close_is_value_error(kind: str, no_leaks: Path) -> None:
    file = await open_closed(kind, "w+b", no_leaks)
    with pytest.raises(ValueError, match="closed"):
        await file.persist(no_leaks / "kept")
    assert os.listdir(no_leaks) == []


async def test_rollover_after_close_is_value_error(no_leaks: Path) -> None:
    file = await atf.SpooledTemporaryFile(dir=no_leaks)
    await file.write(b"data")
    await file.aclose()
    with pytest.raises(ValueError, match="closed"):
        await file.rollover()
    assert not file.rolled


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_closed_file_reports_closed(kind: str, no_leaks: Path) -> None:
    file = await open_closed(kind, "w+b", no_leaks)
    assert file.closed is True


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_aclose_twice_is_fine(kind: str, no_leaks: Path) -> None:
    file = await open_closed(kind, "w+b", no_leaks)
    await file.aclose()
    assert file.closed


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_aclose_after_async_with_is_fine(kind: str, no_leaks: Path) -> None:
    async with open_constructor(kind, no_leaks) as file:
        pass
    await file.aclose()
    assert file.closed


async def test_named_aclose_twice_removes_only_its_own_file(no_leaks: Path) -> None:
    file = await atf.NamedTemporaryFile(dir=no_leaks)
    await file.aclose()
    # Something else takes the name: a second aclose must not remove it.
    Path(file.name).write_bytes(b"someone else's")
    await file.aclose()
    assert Path(file.name).read_bytes() == b"someone else's"
    Path(file.name).unlink()


# -- constructors are used once -----------------------------------------------------


def open_constructor(kind: str, directory: Path) -> Any:
    if kind == "TemporaryFile":
        return atf.TemporaryFile(dir=directory)
    if kind == "NamedTemporaryFile":
        return atf.NamedTemporaryFile(dir=directory)
    return atf.SpooledTemporaryFile(dir=directory)


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_awaiting_a_constructor_twice_is_runtime_error(
    kind: str, no_leaks: Path
) -> None:
    constructor = open_constructor(kind, no_leaks)
    file = await constructor
    try:
        before = (os.listdir(no_leaks), len(os.listdir("/proc/self/fd")))
        with pytest.raises(RuntimeError):
            await constructor
        assert (os.listdir(no_leaks), len(os.listdir("/proc/self/fd"))) == before
    finally:
        await file.aclose()


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_entering_an_awaited_constructor_is_runtime_error(
    kind: str, no_leaks: Path
) -> None:
    constructor = open_constructor(kind, no_leaks)
    file = await constructor
    try:
        with pytest.raises(RuntimeError):
            async with constructor:
                pass
        assert not file.closed
    finally:
        await file.aclose()


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_entering_a_constructor_twice_is_runtime_error(
    kind: str, no_leaks: Path
) -> None:
    constructor = open_constructor(kind, no_leaks)
    async with constructor as file:
        with pytest.raises(RuntimeError):
            async with constructor:
                pass
        assert not file.closed
        await file.write(b"still usable")
    with pytest.raises(RuntimeError):
        async with constructor:
            pass


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_awaiting_an_entered_constructor_is_runtime_error(
    kind: str, no_leaks: Path
) -> None:
    constructor = open_constructor(kind, no_leaks)
    async with constructor as file:
        with pytest.raises(RuntimeError):
            await constructor
        assert not file.closed


async def test_entering_a_temporary_directory_twice_is_runtime_error(
    no_leaks: Path,
) -> None:
    directory = atf.TemporaryDirectory(dir=no_leaks)
    async with directory as path:
        with pytest.raises(RuntimeError):
            async with directory:
                pass
        assert os.listdir(no_leaks) == [os.path.basename(path)]
    with pytest.raises(RuntimeError):
        async with directory:
            pass
    assert os.listdir(no_leaks) == []


async def test_awaiting_a_temporary_directory_twice_is_runtime_error(
    no_leaks: Path,
) -> None:
    directory = atf.TemporaryDirectory(dir=no_leaks)
    created = await directory
    try:
        with pytest.raises(RuntimeError):
            await directory
        assert os.listdir(no_leaks) == [os.path.basename(created.name)]
    finally:
        await created.cleanup()


# -- dir as Path and bytes ----------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_dir_as_pathlib_path_works(kind: str, no_leaks: Path) -> None:
    await create(kind, {"dir": no_leaks})


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_dir_as_bytes_works(kind: str, no_leaks: Path) -> None:
    await create(kind, {"dir": os.fsencode(no_leaks)})


async def test_named_file_with_path_dir_has_str_name(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(dir=no_leaks) as file:
        assert isinstance(file.name, str)
        assert os.path.dirname(file.name) == str(no_leaks)


async def test_named_file_with_bytes_dir_has_bytes_name(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(dir=os.fsencode(no_leaks)) as file:
        assert isinstance(file.name, bytes)
        assert os.path.dirname(file.name) == os.fsencode(no_leaks)


async def test_mkstemp_with_bytes_dir_gives_bytes_path(no_leaks: Path) -> None:
    fd, path = await atf.mkstemp(dir=os.fsencode(no_leaks))
    os.close(fd)
    os.unlink(path)
    assert isinstance(path, bytes)


async def test_mkdtemp_with_path_dir_gives_str_path(no_leaks: Path) -> None:
    path = await atf.mkdtemp(dir=no_leaks)
    os.rmdir(path)
    assert isinstance(path, str)


# -- persist ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_persist_into_missing_directory_is_file_not_found(
    kind: str, no_leaks: Path
) -> None:
    async with open_constructor(kind, no_leaks) as file:
        await file.write(b"data")
        with pytest.raises(FileNotFoundError):
            await file.persist(no_leaks / "missing" / "kept")
        await file.seek(0)
        assert await file.read() == b"data"


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_persist_without_overwrite_onto_existing_is_file_exists(
    kind: str, no_leaks: Path
) -> None:
    existing = no_leaks / "existing"
    existing.write_bytes(b"old")
    try:
        async with open_constructor(kind, no_leaks) as file:
            await file.write(b"new")
            with pytest.raises(FileExistsError):
                await file.persist(existing, overwrite=False)
            assert existing.read_bytes() == b"old"
            assert await file.tell() == 3
        assert os.listdir(no_leaks) == ["existing"]
    finally:
        existing.unlink()


@pytest.mark.parametrize("kind", FILE_KINDS)
async def test_persist_to_non_path_is_type_error(kind: str, no_leaks: Path) -> None:
    async with open_constructor(kind, no_leaks) as file:
        with pytest.raises(TypeError):
            await file.persist(5)


@pytest.mark.parametrize(
    "case", ["unknown-encoding", "illegal-newline", "unbuffered-text"]
)
async def test_bad_open_argument_raises_every_time(case: str, no_leaks: Path) -> None:
    # Valid argument sets are checked once and remembered; a bad one never is.
    options, documented = OPEN_ARGUMENTS[case]
    for _ in range(3):
        with pytest.raises(documented):
            await atf.TemporaryFile(**{**options, "dir": no_leaks})


async def test_binary_line_buffering_warns_every_time(no_leaks: Path) -> None:
    # open()'s RuntimeWarning for buffering=1 in binary mode, on each creation
    # as the standard library's: such argument sets are not remembered.
    for _ in range(2):
        with pytest.warns(RuntimeWarning, match="line buffering"):
            file = await atf.TemporaryFile("w+b", buffering=1, dir=no_leaks)
        await file.aclose()
