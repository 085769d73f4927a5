"""Everyday use under pytest-asyncio, the way application developers write tests.

No AnyIO plugin here: plain ``@pytest.mark.asyncio`` tests and ``pytest_asyncio``
fixtures on the default asyncio event loop, with asyncio's own APIs around the
package (``asyncio.gather``, ``asyncio.create_subprocess_exec``, ``asyncio.timeout``-
style ``wait_for``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import anyio_tempfile as atf


def write_file(path: str | Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)


def read_file(path: str | Path) -> bytes:
    with open(path, "rb") as opened:
        return opened.read()


@pytest_asyncio.fixture
async def workspace(scratch_dir: Path) -> AsyncIterator[str]:
    """A temporary directory for one test, removed by the fixture's teardown."""
    async with atf.TemporaryDirectory(dir=scratch_dir) as path:
        yield path
    assert os.listdir(scratch_dir) == []


@pytest.mark.asyncio
async def test_scratch_file_round_trip(no_leaks: Path) -> None:
    async with atf.TemporaryFile(dir=no_leaks) as f:
        await f.write(b"header\nrow 1\nrow 2\n")
        await f.seek(0)
        assert await f.readline() == b"header\n"
        assert [line async for line in f] == [b"row 1\n", b"row 2\n"]


@pytest.mark.asyncio
async def test_fixture_workspace_holds_files(workspace: str) -> None:
    report = os.path.join(workspace, "report.txt")
    write_file(report, b"done\n")
    assert os.listdir(workspace) == ["report.txt"]


@pytest.mark.asyncio
async def test_config_file_handed_to_a_subprocess(no_leaks: Path) -> None:
    async with atf.NamedTemporaryFile(
        "w+", encoding="utf-8", suffix=".ini", dir=no_leaks, delete_on_close=False
    ) as config:
        await config.write("[server]\nport = 8080\n")
        await config.aclose()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; print(open(sys.argv[1], encoding='utf-8').read(), end='')",
            config.name,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await process.communicate()
        assert process.returncode == 0
        assert stdout == b"[server]\nport = 8080\n"
    assert os.listdir(no_leaks) == []


@pytest.mark.asyncio
async def test_upload_spooled_in_memory_then_persisted(
    no_leaks: Path, tmp_path: Path
) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    chunks = [b"\x89PNG\r\n", b"\x00" * 100, b"IEND"]
    async with atf.SpooledTemporaryFile(max_size=1024 * 1024, dir=no_leaks) as f:
        for chunk in chunks:
            await f.write(chunk)
        assert f.rolled is False
        saved = await f.persist(uploads / "avatar.png", overwrite=False)
    assert os.fspath(saved) == str(uploads / "avatar.png")
    assert os.listdir(uploads) == ["avatar.png"]
    assert read_file(uploads / "avatar.png") == b"".join(chunks)


@pytest.mark.asyncio
async def test_many_files_written_concurrently_with_gather(no_leaks: Path) -> None:
    async def write_and_read(number: int) -> bytes:
        async with atf.NamedTemporaryFile(dir=no_leaks, suffix=f"-{number}") as f:
            await f.write(b"file %d" % number)
            await f.seek(0)
            return await f.read()

    results = await asyncio.gather(*(write_and_read(n) for n in range(20)))
    assert results == [b"file %d" % n for n in range(20)]
    assert os.listdir(no_leaks) == []


@pytest.mark.asyncio
async def test_work_under_wait_for_completes_and_cleans_up(no_leaks: Path) -> None:
    async def build() -> list[str]:
        async with atf.TemporaryDirectory(dir=no_leaks) as path:
            for name in ("a.o", "b.o"):
                write_file(os.path.join(path, name), b"obj")
            return sorted(os.listdir(path))

    assert await asyncio.wait_for(build(), timeout=30) == ["a.o", "b.o"]
    assert os.listdir(no_leaks) == []


@pytest.mark.asyncio
async def test_text_log_written_and_read_back(no_leaks: Path) -> None:
    async with atf.TemporaryFile("w+", encoding="utf-8", dir=no_leaks) as log:
        await log.writelines([f"event {n}\n" for n in range(3)])
        await log.seek(0)
        assert await log.readlines() == ["event 0\n", "event 1\n", "event 2\n"]
