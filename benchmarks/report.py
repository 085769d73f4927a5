"""What the run prints and saves: the machine, one table per backend, the JSON.

Every figure is a median over the rounds: of the seconds, and of each round's
worst and 99th-percentile loop lateness.  Ratios are of those medians.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .harness import TICK, Plan, Results, median
from .implementations import Implementation
from .workloads import Workload

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPOSITORY / ".bench" / "results.json"
PACKAGES = ("anyio", "trio", "uvloop", "aiofiles", "anyio_tempfile")


# -- the machine ----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _file_system(path: str) -> str:
    """The type of the file system ``path`` is on (Linux), e.g. ``ext4``."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                point = fields[1]
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) > len(best):
                    best, kind = point, fields[2]
    except (OSError, IndexError):
        pass
    return kind


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            # --no-optional-locks: never touch the index, only read.
            ["git", "--no-optional-locks", *args],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _package_digest() -> str:
    """A digest of the package's source: which code exactly was measured."""
    digest = hashlib.sha256()
    for source in sorted((REPOSITORY / "anyio_tempfile").glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def machine(where: str) -> dict[str, Any]:
    affinity = getattr(os, "sched_getaffinity", None)
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    status = _git("status", "--porcelain", "--untracked-files=no", "anyio_tempfile")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": f"{platform.system()} {platform.release()}",
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "temp_dir": where,
        "temp_file_system": _file_system(os.path.realpath(where)),
        "versions": versions,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "package_modified": None if status is None else bool(status),
        "package_digest": _package_digest(),
    }


def header(info: dict[str, Any], plan: Plan, quick: bool) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    load = info["load_average"]
    modified = " (package modified)" if info["package_modified"] else ""
    lines = [
        f"machine:  {info['cpu']}, {info['cores']} cores "
        f"({info['usable_cores']} usable), load {load[0]:.2f}"
        if load
        else f"machine:  {info['cpu']}, {info['cores']} cores",
        f"python:   {info['python']} on {info['kernel']}",
        f"versions: {versions}",
        f"package:  git {info['git_commit']}{modified}, "
        f"source digest {info['package_digest']}",
        f"files in: {info['temp_dir']} ({info['temp_file_system']})",
        f"run:      {'quick' if quick else 'full'}, {plan.rounds} rounds, "
        f"backends {', '.join(b.name for b in plan.backends)}",
    ]
    capped = [w for w in plan.workloads if plan.rounds_of(w) < plan.rounds]
    for workload in capped:
        lines.append(
            f"          {workload.key}: only {plan.rounds_of(workload)} rounds "
            "(too slow to repeat more)"
        )
    return "\n".join(lines)


# -- the tables -----------------------------------------------------------------


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.4f}" if value < 10 else f"{value:.2f}"


def _ratio(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return "-"
    if value >= 100:
        return f"{value:.0f}x"
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _divide(a: float, b: float) -> float:
    return a / b if b > 0 and not math.isnan(a) else math.nan


def summarise(results: Results) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Medians per backend, workload and implementation."""
    summary: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for backend, by_workload in results.measurements.items():
        for workload, by_implementation in by_workload.items():
            for implementation, runs in by_implementation.items():
                seconds = [m.seconds for m in runs]
                summary.setdefault(backend, {}).setdefault(workload, {})[
                    implementation
                ] = {
                    "median_s": median(seconds),
                    "min_s": min(seconds),
                    "max_s": max(seconds),
                    "cpu_s": median([m.cpu_seconds for m in runs]),
                    "worst_ms": median([m.lateness.worst_ms for m in runs]),
                    "p99_ms": median([m.lateness.p99_ms for m in runs]),
                    "rounds": len(runs),
                }
    return summary


COLUMNS = (
    ("impl", 9, "<"),
    ("median s", 9, ">"),
    ("spread", 7, ">"),
    ("x stdlib", 9, ">"),
    ("ours/impl", 10, ">"),
    ("cpu s", 8, ">"),
    ("worst ms", 9, ">"),
    ("p99 ms", 8, ">"),
)


def table(
    backend: str,
    summary: dict[str, dict[str, dict[str, float]]],
    workloads: Sequence[Workload],
    implementations: Sequence[Implementation],
    idle: Sequence[Any],
) -> str:
    title_width = max(len(w.title) for w in workloads) + 2
    floor_worst = median([lateness.worst_ms for lateness in idle])
    floor_p99 = median([lateness.p99_ms for lateness in idle])
    lines = [
        f"== {backend} ==  idle loop lateness (the floor): worst {floor_worst:.2f} ms,"
        f" p99 {floor_p99:.2f} ms",
        "workload".ljust(title_width)
        + " ".join(f"{name:{align}{width}}" for name, width, align in COLUMNS),
    ]
    for workload in workloads:
        rows = summary.get(workload.key, {})
        baseline = rows.get("stdlib", {}).get("median_s", math.nan)
        ours = rows.get("ours", {}).get("median_s", math.nan)
        label = workload.title
        for implementation in implementations:
            row = rows.get(implementation.name)
            if row is None:
                continue
            spread = _divide(row["max_s"] - row["min_s"], row["median_s"]) * 100
            versus_ours = _divide(ours, row["median_s"])
            cells = (
                implementation.name,
                _seconds(row["median_s"]),
                "-" if row["rounds"] < 2 or math.isnan(spread) else f"{spread:.0f}%",
                _ratio(_divide(row["median_s"], baseline)),
                "" if implementation.name == "ours" else _ratio(versus_ours),
                _seconds(row["cpu_s"]),
                _ms(row["worst_ms"]),
                _ms(row["p99_ms"]),
            )
            lines.append(
                label.ljust(title_width)
                + " ".join(
                    f"{cell:{align}{width}}"
                    for cell, (_, width, align) in zip(cells, COLUMNS, strict=True)
                )
            )
            label = ""
    return "\n".join(lines)


def ours_versus(
    summary: dict[str, dict[str, dict[str, dict[str, float]]]],
    workloads: Sequence[Workload],
    backends: Sequence[str],
) -> str:
    """One line per workload: ours/anyio and ours/aiofiles on each backend."""
    title_width = max(len(w.title) for w in workloads) + 2
    columns = [
        (backend, other)
        for backend in backends
        for other in ("anyio", "aiofiles")
        if any(other in summary.get(backend, {}).get(w.key, {}) for w in workloads)
    ]
    heads = [f"{backend}/{other}" for backend, other in columns]
    widths = [max(len(head), 6) for head in heads]
    lines = [
        "ours / other (median time; below 1 = ours is faster)",
        "workload".ljust(title_width)
        + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)),
    ]
    for workload in workloads:
        cells = []
        for (backend, other), width in zip(columns, widths, strict=True):
            rows = summary.get(backend, {}).get(workload.key, {})
            ours = rows.get("ours", {}).get("median_s", math.nan)
            theirs = rows.get(other, {}).get("median_s", math.nan)
            cells.append(f"{_ratio(_divide(ours, theirs)):>{width}}")
        lines.append(workload.title.ljust(title_width) + " ".join(cells))
    return "\n".join(lines)


LEGEND = f"""\
median s   median over the rounds of the workload's time (setup and checks excluded)
spread     (slowest - fastest) / median over the rounds: the noise
x stdlib   time / the stdlib's time (stdlib: tempfile called on the loop, blocking)
ours/impl  ours' time / this implementation's time: below 1.00x, ours is faster
cpu s      median CPU time of the process (loop and worker threads), the work's cost
worst ms   how late a {TICK * 1e3:.0f} ms sleep woke, at worst (median of the rounds')
p99 ms     the same, 99th percentile: the loop's responsiveness during the workload"""


# -- the JSON file --------------------------------------------------------------


def to_json(
    path: Path,
    *,
    info: dict[str, Any],
    plan: Plan,
    quick: bool,
    results: Results,
    started: datetime,
    elapsed: float,
) -> None:
    document = {
        "schema": 1,
        "started": started.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 3),
        "quick": quick,
        "argv": sys.argv[1:],
        "tick_ms": TICK * 1e3,
        "machine": info,
        "workloads": {
            w.key: {"title": w.title, "size": w.size, "rounds": plan.rounds_of(w)}
            for w in plan.workloads
        },
        "idle_lateness": {
            backend: [asdict(lateness) for lateness in samples]
            for backend, samples in results.idle.items()
        },
        "summary": summarise(results),
        "measurements": {
            backend: {
                workload: {
                    implementation: [asdict(m) for m in runs]
                    for implementation, runs in by_implementation.items()
                }
                for workload, by_implementation in by_workload.items()
            }
            for backend, by_workload in results.measurements.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent == DEFAULT_JSON.parent:
        # Results are per machine, never committed: ignore them without
        # touching the repository's own .gitignore.
        (path.parent / ".gitignore").write_text("*\n")
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(document, indent=1) + "\n")
    temporary.replace(path)
