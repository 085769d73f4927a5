"""The examples run as written, and the upload server does what it says.

``everyday_asyncio.py``, ``everyday_trio.py`` and a reduced ``demo.py`` run as
subprocesses, as a user runs them.  The upload server runs under uvicorn inside
the test, on loopback, driven by httpx, so that its budget and descriptors can
be looked at directly.  These need starlette, uvicorn and httpx (the ``test``
extra has them) and are skipped without them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from support import open_descriptors

if TYPE_CHECKING:
    import httpx
    from starlette.applications import Starlette

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KiB = 1024


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"),
        pytest.param(
            ("trio", {}),
            id="trio",
            marks=pytest.mark.skip(reason="uvicorn serves on asyncio only"),
        ),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The async tests here serve with uvicorn: asyncio loops only."""
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=EXAMPLES.parent,
        check=False,
    )


def assert_lines(output: str, patterns: list[str]) -> None:
    lines = output.splitlines()
    assert len(lines) == len(patterns), output
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), f"{line!r} does not match {pattern!r}"


def need_web_stack() -> None:
    for name in ("starlette", "uvicorn", "httpx"):
        pytest.importorskip(name)


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module (the examples are not a package)."""
    module_name = f"_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# -- the scripts, run as written ------------------------------------------------


def test_everyday_asyncio_runs() -> None:
    result = run_example("examples/everyday_asyncio.py")
    assert result.returncode == 0, result.stderr
    assert_lines(
        result.stdout,
        [
            r"TemporaryFile: descriptor \d+, read back ok",
            r"NamedTemporaryFile: persisted as report\.txt",
            r"SpooledTemporaryFile: rolled over to disk past 64 KiB, bytes intact",
            r"TemporaryDirectory: removed with everything in it",
        ],
    )


def test_everyday_trio_runs() -> None:
    pytest.importorskip("trio")
    result = run_example("examples/everyday_trio.py")
    assert result.returncode == 0, result.stderr
    assert_lines(
        result.stdout,
        [
            r"TemporaryFile: 2 text lines read back with async for",
            r"NamedTemporaryFile: persisted as report\.txt",
            r"SpoolBudget: [234] of 4 files rolled to disk by the shared budget, "
            r"peak \d+ KiB of 128 KiB",
            r"atomic_write: file replaced whole; a cancelled write left it untouched",
            r"TemporaryDirectory: removed with everything in it",
        ],
    )


@pytest.mark.parametrize("client_backend", ["asyncio", "trio"])
def test_demo_runs_reduced(client_backend: str) -> None:
    need_web_stack()
    if client_backend == "trio":
        pytest.importorskip("trio")
    # Small enough to be quick, with uploads on both sides of max_size and a
    # budget smaller than the uploads in flight.
    result = run_example(
        "examples/demo.py",
        "--uploads=24",
        "--concurrency=8",
        "--max-size=1MiB",
        "--spool-max-size=128KiB",
        "--budget=256KiB",
        "--seed=7",
        "--timeout=60",
        f"--backend={client_backend}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "demo: all checks passed" in out
    assert re.search(r"uploads +24/24 in ", out), out
    assert re.search(r"sha256 +24/24 stored files match", out), out
    assert re.search(r"temp files left +0 in the spool dir", out), out
    assert re.search(r"; 0 bytes in use after", out), out
    spooling = re.search(r"(\d+) stayed in memory, (\d+) rolled to disk", out)
    assert spooling is not None, out
    in_memory, rolled = map(int, spooling.groups())
    assert in_memory > 0 and rolled > 0 and in_memory + rolled == 24  # noqa: PT018
    kept = re.search(r"(\d+) linked in place: 0 bytes copied .*; (\d+) in memory", out)
    assert kept is not None, out
    assert (int(kept[1]), int(kept[2])) == (rolled, in_memory)


def test_demo_finds_a_bad_stored_file(tmp_path: Path) -> None:
    need_web_stack()
    demo = load_example("demo")
    data = b"what was sent"
    sha256 = hashlib.sha256(data).hexdigest()
    reply = demo.Reply(sha256, sha256, len(data), False, "write", False)
    upload = demo.Upload(len(data), sha256, reply, None)
    check: Callable[[Any, Path], str | None] = demo.check_stored
    assert "not stored" in str(check(upload, tmp_path))
    (tmp_path / sha256).write_bytes(data)
    (tmp_path / sha256).chmod(0o600)
    assert check(upload, tmp_path) is None
    (tmp_path / sha256).write_bytes(b"what was stored")
    assert "stored file has sha256" in str(check(upload, tmp_path))


# -- the upload server, in process ------------------------------------------------


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` with uvicorn on a free loopback port; a client for it."""
    import httpx
    import uvicorn

    server_module = load_example("upload_server")
    sock = server_module.listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve([sock])
        finally:
            stopped.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(serve)
        try:
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 (uvicorn has no event)
                    await anyio.sleep(0.01)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False
            ) as client:
                yield client
        finally:
            # Shut down gracefully even when the test failed: an exception
            # reaching the task group would cancel serve() before uvicorn
            # closes its listener, and uvloop's loop.close() then waits forever.
            server.should_exit = True
            with anyio.CancelScope(shield=True), anyio.move_on_after(15):
                await stopped.wait()


def make_app(tmp_path: Path, **options: Any) -> Starlette:
    need_web_stack()
    server_module = load_example("upload_server")
    app: Starlette = server_module.create_app(
        tmp_path / "uploads",
        options.pop("budget_bytes", 256 * KiB),
        max_size=options.pop("max_size", 64 * KiB),
        spool_dir=tmp_path / "spool",
        **options,
    )
    return app


def budget_of(app: Starlette) -> Any:
    return app.state.store.budget


def files_open_in(directory: Path) -> dict[int, str]:
    """This process's descriptors of files in ``directory`` (unnamed ones too).

    An ``O_TMPFILE`` file shows as ``<dir>/#<inode> (deleted)``.  Only those
    count: event loops open descriptors of their own (uvloop: ``/dev/null``).
    """
    found = {}
    for fd in open_descriptors():
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{directory}{os.sep}"):
            found[fd] = target
    return found


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/stats")
    assert response.status_code == 200
    reply: dict[str, Any] = response.json()
    return reply


async def test_uploads_are_stored_by_hash(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    bodies = {
        "empty": b"",
        "small": os.urandom(KiB),
        "at max_size": os.urandom(64 * KiB),  # reaches max_size: still in memory
        "past max_size": os.urandom(64 * KiB + 1),
        "big": os.urandom(3 * 1024 * KiB),
    }
    async with serving(app) as client:
        replies = {}
        for what, body in bodies.items():
            response = await client.post("/uploads", content=body)
            assert response.status_code == 200, (what, response.text)
            replies[what] = response.json()

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield streamed[:]

        streamed = os.urandom(50 * KiB)
        response = await client.post("/uploads", content=chunked())
        assert response.status_code == 200, response.text
        replies["chunked"] = response.json()
        bodies["chunked"] = streamed * 5
        after = await stats(client)

    for what, body in bodies.items():
        reply = replies[what]
        sha256 = hashlib.sha256(body).hexdigest()
        assert reply["sha256"] == reply["name"] == sha256, what
        assert reply["size"] == len(body), what
        rolled = len(body) > 64 * KiB
        assert reply["rolled"] is rolled, what
        assert reply["kept_by"] == ("link" if rolled else "write"), what
        assert reply["duplicate"] is False, what
        stored = tmp_path / "uploads" / sha256
        assert stored.read_bytes() == body, what
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600, what
    assert sorted(os.listdir(tmp_path / "uploads")) == sorted(
        reply["name"] for reply in replies.values()
    )
    assert os.listdir(tmp_path / "spool") == []
    assert after["budget"]["in_use"] == 0
    assert 0 < after["budget"]["peak"] <= after["budget"]["max_bytes"] == 256 * KiB
    assert after["max_size"] == 64 * KiB
    assert after["peak_rss_bytes"] > 0
    assert budget_of(app).in_use == 0
    assert files_open_in(tmp_path) == {}


@pytest.mark.parametrize("size", [KiB, 200 * KiB], ids=["in memory", "rolled"])
async def test_a_duplicate_is_not_stored_twice(tmp_path: Path, size: int) -> None:
    app = make_app(tmp_path)
    body = os.urandom(size)
    async with serving(app) as client:
        first = (await client.post("/uploads", content=body)).json()
        second = (await client.post("/uploads", content=body)).json()
    assert first["duplicate"] is False
    assert first["kept_by"] is not None
    assert second["duplicate"] is True
    assert second["kept_by"] is None
    assert second["name"] == first["name"]
    assert os.listdir(tmp_path / "uploads") == [first["name"]]
    assert (tmp_path / "uploads" / first["name"]).read_bytes() == body
    assert budget_of(app).in_use == 0


async def test_concurrent_uploads_share_the_budget(tmp_path: Path) -> None:
    app = make_app(tmp_path, budget_bytes=128 * KiB, max_size=64 * KiB)
    bodies = [os.urandom(48 * KiB) for _ in range(16)]
    replies: list[dict[str, Any]] = []

    async def send(client: httpx.AsyncClient, body: bytes) -> None:
        response = await client.post("/uploads", content=body)
        assert response.status_code == 200
        replies.append(response.json())

    async with serving(app) as client, anyio.create_task_group() as tasks:
        for body in bodies:
            tasks.start_soon(send, client, body)
    budget = budget_of(app)
    assert budget.in_use == 0
    assert 0 < budget.peak <= 128 * KiB
    assert sorted(reply["sha256"] for reply in replies) == sorted(
        hashlib.sha256(body).hexdigest() for body in bodies
    )
    for reply in replies:
        # No body reaches max_size: any rollover was the budget's doing, and
        # the link then kept it without a copy.
        assert reply["kept_by"] == ("link" if reply["rolled"] else "write")
    assert len(os.listdir(tmp_path / "uploads")) == len(bodies)
    assert os.listdir(tmp_path / "spool") == []


async def test_a_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path, upload_limit=100 * KiB)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield os.urandom(40 * KiB)

    async with serving(app) as client:
        response = await client.post("/uploads", content=chunks())
        assert response.status_code == 413
        assert budget_of(app).in_use == 0
    assert os.listdir(tmp_path / "uploads") == []
    assert os.listdir(tmp_path / "spool") == []
    assert files_open_in(tmp_path) == {}


async def test_a_client_that_goes_away_leaves_nothing(tmp_path: Path) -> None:
    import httpx

    app = make_app(tmp_path)

    class GoneAway(Exception):
        pass

    async def half_a_body() -> AsyncIterator[bytes]:
        yield os.urandom(100 * KiB)  # past max_size: on disk by now
        await anyio.sleep(0.2)
        raise GoneAway

    async with serving(app) as client:
        with pytest.raises((GoneAway, httpx.TransportError)):
            await client.post("/uploads", content=half_a_body())
        # The server notices the disconnect in its own time: poll for it.
        with anyio.fail_after(10):
            while budget_of(app).in_use or files_open_in(tmp_path):  # noqa: ASYNC110
                await anyio.sleep(0.02)
    assert os.listdir(tmp_path / "uploads") == []
    assert os.listdir(tmp_path / "spool") == []
