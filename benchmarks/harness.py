"""Backends, timing, the lateness ticker and the interleaved rounds.

One measurement is one workload run once by one implementation, with a ticker
task beside it that asks for a 1 ms sleep over and over and records how late
each one wakes: a loop blocked for 200 ms shows as one tick 200 ms late.

The schedule makes the comparisons fair on a busy machine: every round runs
every backend (a fresh ``anyio.run`` each), and within it every workload through
every implementation back to back, the implementations' order rotated from one
workload and round to the next, so that no implementation is always first
(cold caches) or always last (a noisy neighbour's burst).  Medians over the
rounds are what the report shows.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .implementations import Implementation
from .workloads import VerificationError, Workload

TICK = 0.001  # the ticker's sleep, in seconds
IDLE_SECONDS = 0.25  # how long the idle loop is watched, for the floor of lateness


@dataclass(frozen=True)
class Backend:
    name: str
    anyio_backend: str  # the backend= of anyio.run
    options: dict[str, Any] = field(default_factory=dict)

    def available(self) -> str | None:
        """``None`` if it can run here, else why not."""
        needed = "uvloop" if self.options.get("use_uvloop") else self.anyio_backend
        try:
            __import__(needed)
        except ImportError:
            return f"{needed} is not installed"
        return None


BACKENDS = (
    Backend("asyncio", "asyncio"),
    Backend("uvloop", "asyncio", {"use_uvloop": True}),
    Backend("trio", "trio"),
)


# -- one measurement ------------------------------------------------------------


class Ticker:
    """Sleeps ``TICK`` again and again; records how late each wake-up is."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self._stopping = False

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        due = time.perf_counter() + TICK
        task_status.started()
        while True:
            await anyio.sleep(TICK)
            woke = time.perf_counter()
            self.lateness.append(max(0.0, woke - due))
            # Stop only after a wake-up: a loop blocked until the very end of the
            # workload is still seen, as this last, late tick.
            if self._stopping:
                return
            due = woke + TICK

    def stop(self) -> None:
        self._stopping = True


class Span:
    """The timed span of a workload; it may leave out its setup and checks."""

    def __init__(self) -> None:
        self.left_out = 0.0
        self.cpu_left_out = 0.0

    @contextmanager
    def untimed(self) -> Iterator[None]:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.left_out += time.perf_counter() - start
            self.cpu_left_out += time.process_time() - cpu_start


@dataclass(frozen=True)
class Lateness:
    worst_ms: float
    p99_ms: float
    ticks: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Lateness:
        ordered = sorted(samples)
        if not ordered:
            return cls(0.0, 0.0, 0)
        p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]  # nearest rank
        return cls(ordered[-1] * 1e3, p99 * 1e3, len(ordered))


@dataclass(frozen=True)
class Measurement:
    seconds: float  # wall clock
    #: CPU time of the whole process, worker threads included: what the work
    #: costs, and less disturbed than the wall clock by other jobs on the machine.
    cpu_seconds: float
    lateness: Lateness
    position: int  # 0 = this implementation ran first in its round


def _open_descriptors() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None  # not Linux: that check is skipped


async def measure(
    workload: Workload, implementation: Implementation, where: str, position: int
) -> Measurement:
    """Run ``workload`` once through ``implementation`` and check what it left."""
    # The previous run's writeback and freed blocks are not this one's cost: on
    # a disk, creating files stalls (10x, here) while the file system is still
    # flushing and discarding what an earlier run wrote and deleted.
    await anyio.to_thread.run_sync(os.sync)
    gc.collect()  # nor is its garbage
    descriptors = _open_descriptors()
    ticker = Ticker()
    span = Span()
    elapsed: float | None = None
    async with anyio.create_task_group() as tasks:
        await tasks.start(ticker.run)
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            await workload.run(implementation, where, span)
        finally:
            ticker.stop()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    assert elapsed is not None  # a task group never swallows the error
    # Every workload cleans up after itself: a leftover file or descriptor is a
    # defect, not noise.
    leftovers = os.listdir(where)
    if leftovers:
        raise VerificationError(
            f"{workload.key}/{implementation.name}: left {len(leftovers)} "
            f"entries behind, e.g. {leftovers[0]!r}"
        )
    if descriptors is not None and _open_descriptors() != descriptors:
        raise VerificationError(
            f"{workload.key}/{implementation.name}: {descriptors} descriptors "
            f"open before, {_open_descriptors()} after"
        )
    return Measurement(
        elapsed - span.left_out,
        cpu - span.cpu_left_out,
        Lateness.of(ticker.lateness),
        position,
    )


async def idle_lateness() -> Lateness:
    """The floor: how late the ticker is on a loop with nothing else to do."""
    ticker = Ticker()
    async with anyio.create_task_group() as tasks:
        await tasks.start(ticker.run)
        await anyio.sleep(IDLE_SECONDS)
        ticker.stop()
    return Lateness.of(ticker.lateness)


async def warm_up(
    backend: Backend, implementations: Sequence[Implementation], where: str
) -> None:
    """Start the worker threads, and touch each implementation, before timing.

    Each job sleeps a little, so that the pools really grow to their size
    (AnyIO's 40 threads; on asyncio also the default executor that
    ``aiofiles`` uses) instead of one thread taking every job in turn.
    """
    async with anyio.create_task_group() as tasks:
        for _ in range(40):
            tasks.start_soon(anyio.to_thread.run_sync, time.sleep, 0.01)
    if backend.anyio_backend == "asyncio":
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(None, time.sleep, 0.01) for _ in range(32))
        )
    for implementation in implementations:
        async with implementation.named_temporary_file(where) as file:
            await file.write(b"warm")


# -- the schedule ---------------------------------------------------------------


def rotated(items: Sequence[Implementation], by: int) -> list[Implementation]:
    shift = by % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


@dataclass
class Results:
    """Every measurement, by backend, workload key and implementation name."""

    measurements: dict[str, dict[str, dict[str, list[Measurement]]]] = field(
        default_factory=dict
    )
    idle: dict[str, list[Lateness]] = field(default_factory=dict)

    def add(
        self, backend: str, workload: str, implementation: str, m: Measurement
    ) -> None:
        by_workload = self.measurements.setdefault(backend, {})
        by_workload.setdefault(workload, {}).setdefault(implementation, []).append(m)


@dataclass(frozen=True)
class Plan:
    backends: Sequence[Backend]
    workloads: Sequence[Workload]
    implementations: Sequence[Implementation]
    rounds: int
    where: str  # the directory the temporary files go in

    def rounds_of(self, workload: Workload) -> int:
        return min(self.rounds, workload.max_rounds or self.rounds)


async def _one_round(
    plan: Plan,
    backend: Backend,
    round_index: int,
    results: Results,
    progress: Callable[[str], None],
) -> None:
    here = [i for i in plan.implementations if backend.anyio_backend in i.backends]
    where = tempfile.mkdtemp(prefix="anyio-tempfile-bench-", dir=plan.where)
    try:
        await warm_up(backend, here, where)
        results.idle.setdefault(backend.name, []).append(await idle_lateness())
        for workload_index, workload in enumerate(plan.workloads):
            if round_index >= plan.rounds_of(workload):
                continue
            line = []
            for position, implementation in enumerate(
                rotated(here, round_index + workload_index)
            ):
                m = await measure(workload, implementation, where, position)
                results.add(backend.name, workload.key, implementation.name, m)
                line.append(f"{implementation.name} {m.seconds:.3f}s")
            progress(
                f"  round {round_index + 1} {backend.name:<7} {workload.key:<22} "
                + ", ".join(line)
            )
    finally:
        shutil.rmtree(where, ignore_errors=True)


def run(plan: Plan, progress: Callable[[str], None] | None = None) -> Results:
    """Run the plan: rounds outermost, then backends, workloads, implementations."""
    say = progress or (lambda text: print(text, file=sys.stderr, flush=True))
    results = Results()
    for round_index in range(plan.rounds):
        for backend in plan.backends:
            anyio.run(
                _one_round,
                plan,
                backend,
                round_index,
                results,
                say,
                backend=backend.anyio_backend,
                backend_options=backend.options,
            )
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan
