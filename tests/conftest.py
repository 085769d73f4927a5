"""Shared fixtures: every async test runs on asyncio, asyncio+uvloop and trio."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import open_descriptors

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


@pytest.fixture
def scratch_dir(tmp_path: Path) -> Path:
    """An empty directory to pass as ``dir=``; its listing is checked by tests."""
    directory = tmp_path / "scratch"
    directory.mkdir()
    return directory


@pytest.fixture
def no_leaks(scratch_dir: Path) -> Iterator[Path]:
    """Fail the test if it leaves a descriptor open or an entry in ``scratch_dir``."""
    before = open_descriptors()
    yield scratch_dir
    leaked = open_descriptors() - before
    assert not leaked, f"leaked descriptors: {sorted(leaked)}"
    assert sorted(os.listdir(scratch_dir)) == []
