"""The machinery of ``test_cancellation.py``: find every await point, cancel at each.

A :class:`Probe` replaces ``anyio.to_thread.run_sync`` and ``anyio.lowlevel.checkpoint``
(the package looks both up on their modules at call time), so it sees every await
point of an operation without a hand-written list.  A first, uncancelled run counts
them; then :func:`sweep` re-runs the operation once per (point, style), cancelling at
that point in that style, and checks what the operation left behind.

A :class:`Trial` is one operation with its own setup and its own idea of a consistent
outcome (:meth:`Trial.verify`); a fresh one is made for every run.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import io
import os
import shutil
import stat
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Generic, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
from support import open_descriptors

T = TypeVar("T")

PACKAGE = "anyio_tempfile"

#: NATIVE_REPEAT cancels again before this many of the await points that follow
#: (a bounded storm: a cleanup that is retried after each cancellation would never
#: finish under an endless one).
REPEATS_BEFORE_LATER_POINTS = 2

#: How long a worker stays busy after it asked the loop to cancel the task, so that
#: the cancellation reaches the task while the worker is still running.
WORKER_BUSY_SECONDS = 0.004


#: An operation that has not ended after this long is reported as hung.
HANG_SECONDS = 20


class Hung(Exception):
    """The operation under test did not end (within HANG_SECONDS)."""


class BodyError(Exception):
    """The exception an ``async with`` body raises of its own accord."""


class PointKind(enum.Enum):
    THREAD = "thread"  # a call of anyio.to_thread.run_sync
    CHECKPOINT = "checkpoint"  # a call of anyio.lowlevel.checkpoint


class Style(enum.Enum):
    """Where and how the cancellation is injected at an await point."""

    #: AnyIO scope cancelled just before the await point.
    SCOPE_BEFORE = "scope-before"
    #: AnyIO scope cancelled from the worker thread, before the work runs.
    SCOPE_DURING = "scope-during"
    #: AnyIO scope cancelled right after the last await point returned.
    SCOPE_AFTER = "scope-after"
    #: ``Task.cancel()`` just before the await point (asyncio only).
    NATIVE_BEFORE = "native-before"
    #: ``Task.cancel()`` from the worker, which then stays busy, before the work.
    NATIVE_PRE = "native-during-pre"
    #: ``Task.cancel()`` from the worker at the first system call of the work.
    NATIVE_IN = "native-during-in"
    #: ``Task.cancel()`` from the worker after the work, before it returns.
    NATIVE_POST = "native-during-post"
    #: As NATIVE_IN, three times over, then again before the next two await points.
    NATIVE_REPEAT = "native-repeat"
    #: ``Task.cancel()`` right after the last await point returned.
    NATIVE_AFTER = "native-after"

    @property
    def native(self) -> bool:
        return self.name.startswith("NATIVE")

    @property
    def in_worker(self) -> bool:
        return self in _IN_WORKER

    @property
    def after_last(self) -> bool:
        return self in (Style.SCOPE_AFTER, Style.NATIVE_AFTER)


_IN_WORKER = frozenset(
    {Style.SCOPE_DURING, Style.NATIVE_PRE, Style.NATIVE_IN, Style.NATIVE_POST}
    | {Style.NATIVE_REPEAT}
)


class Outcome(enum.Enum):
    CANCELLED = "raised the cancellation"
    COMPLETED = "completed"
    BODY_ERROR = "raised the body's own error"
    OTHER_ERROR = "raised an unexpected error"


@dataclass(frozen=True)
class Plan:
    point: int  # index of the await point
    style: Style

    def label(self, total: int) -> str:
        return f"point {self.point}/{total} {self.style.value}"


@dataclass
class Result:
    outcome: Outcome
    error: BaseException | None
    after_ran: bool  # the code after the operation's next real checkpoint ran
    scope_caught: bool | None  # CancelScope.cancelled_caught (scope styles)


class Trial:
    """One run of one operation: ``setup``, ``run`` (swept), ``verify``, ``teardown``.

    ``verify`` runs uncancelled once ``run`` has ended, and returns the ways the
    state differs from what ``outcome`` allows; ``extra_fds`` is how many descriptors
    are open that were not before ``setup``.  ``teardown`` removes whatever is left
    (the sweep then checks that nothing is).
    """

    #: Whether the operation is expected to hop to a worker thread at all.
    uses_threads = True
    #: Whether ``run`` is an ``async with`` block whose body raises BodyError.
    body_raises = False
    #: Whether the operation promises to wait for its workers even when natively
    #: cancelled (creation and cleanup do; a plain read or write need not).
    waits_for_workers = True

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    async def setup(self) -> None:
        pass

    async def run(self) -> None:
        raise NotImplementedError

    async def verify(self, outcome: Outcome, extra_fds: int) -> list[str]:
        raise NotImplementedError

    async def teardown(self) -> None:
        clear_directory(self.dir)


def clear_directory(directory: Path) -> None:
    """Remove everything in ``directory``, read-only entries included."""
    for entry in os.scandir(directory):
        if entry.is_dir(follow_symlinks=False):
            for root, dirs, _files in os.walk(entry.path):
                os.chmod(root, stat.S_IRWXU)
                for name in dirs:
                    os.chmod(os.path.join(root, name), stat.S_IRWXU)
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def _is_system_call(func: object) -> bool:
    """Whether a C function the profiler reports is I/O: ``os`` or a file method."""
    owner = getattr(func, "__self__", None)
    if owner is os or getattr(func, "__module__", None) in ("posix", "nt"):
        return True
    return isinstance(owner, io.IOBase)


class Probe:
    """Stands in for ``anyio.to_thread.run_sync`` and ``anyio.lowlevel.checkpoint``.

    While ``active`` it numbers the await points it sees (``kinds``) and carries out
    ``plan``; it always tracks the worker calls it started, so that the sweep can
    tell whether an operation returned while its worker was still at work.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real_run_sync = anyio.to_thread.run_sync
        self.real_checkpoint = anyio.lowlevel.checkpoint
        monkeypatch.setattr(anyio.to_thread, "run_sync", self._run_sync)
        monkeypatch.setattr(anyio.lowlevel, "checkpoint", self._checkpoint)
        # A module of the package that bound either function at import time
        # (``from anyio.lowlevel import checkpoint``) gets the stand-in too.
        replacements: dict[int, object] = {
            id(self.real_run_sync): self._run_sync,
            id(self.real_checkpoint): self._checkpoint,
        }
        for module_name, module in list(sys.modules.items()):
            if module_name.split(".")[0] != PACKAGE:
                continue
            for attribute, value in list(vars(module).items()):
                if id(value) in replacements:
                    monkeypatch.setattr(module, attribute, replacements[id(value)])
        self.active = False
        self.kinds: list[PointKind] = []
        self.plan: Plan | None = None
        self.injected = False
        self.repeats_left = 0
        self.scope: anyio.CancelScope | None = None
        self.task: asyncio.Task[Any] | None = None
        self._lock = threading.Lock()
        self.calls: list[_Call[Any]] = []  # handed to a worker, not known settled
        self.working_calls = 0  # calls inside the real work right now

    def start(self, plan: Plan | None) -> None:
        self.kinds = []
        self.plan = plan
        self.injected = False
        self.repeats_left = REPEATS_BEFORE_LATER_POINTS
        self.active = True

    def stop(self) -> None:
        self.active = False

    # -- cancelling -------------------------------------------------------------

    def _cancel(self) -> None:
        """In the loop: cancel the way the plan's style says."""
        assert self.plan is not None
        if self.plan.style.native:
            assert self.task is not None
            self.task.cancel()
        else:
            assert self.scope is not None
            self.scope.cancel()

    def _cancel_from_worker(self, times: int = 1) -> None:
        for _ in range(times):
            anyio.from_thread.run_sync(self._cancel)
            if self.plan is not None and self.plan.style.native:
                # Keep the worker busy while the loop delivers the cancellation.
                time.sleep(WORKER_BUSY_SECONDS)

    # -- the replacements ---------------------------------------------------------

    def _take(self, kind: PointKind) -> tuple[bool, Style | None]:
        """Count one await point; say whether to cancel before it, and how after."""
        if not self.active:
            return False, None
        index = len(self.kinds)
        self.kinds.append(kind)
        plan = self.plan
        if plan is None:
            return False, None
        if self.injected:
            if plan.style is Style.NATIVE_REPEAT and self.repeats_left:
                self.repeats_left -= 1
                return True, None
            return False, None
        if index != plan.point:
            return False, None
        self.injected = True
        if plan.style in (Style.SCOPE_BEFORE, Style.NATIVE_BEFORE):
            return True, None
        return False, plan.style

    async def _checkpoint(self) -> None:
        cancel_now, style = self._take(PointKind.CHECKPOINT)
        if cancel_now:
            self._cancel()
        await self.real_checkpoint()
        if style is not None and style.after_last:
            self._cancel()

    async def _run_sync(
        self, func: Callable[..., T], *args: object, **kwargs: Any
    ) -> T:
        cancel_now, style = self._take(PointKind.THREAD)
        if cancel_now:
            self._cancel()
        call = self._tracked(func, style if style and style.in_worker else None)
        try:
            result: T = await self.real_run_sync(call, *args, **kwargs)
        except BaseException:
            if not call.started:
                call.given_up_at = time.monotonic()
            raise
        if style is not None and style.after_last:
            self._cancel()
        return result

    def _tracked(self, func: Callable[..., T], style: Style | None) -> _Call[T]:
        call = _Call(self, func, style)
        with self._lock:
            self.calls.append(call)
        return call

    def _work(self, func: Callable[..., T], args: tuple[object, ...]) -> T:
        with self._lock:
            self.working_calls += 1
        try:
            return func(*args)
        finally:
            with self._lock:
                self.working_calls -= 1

    def _cancelling_at_first_system_call(self, times: int) -> _ProfileCancel:
        return _ProfileCancel(self, times)

    def pending_calls(self, *, orphans: bool) -> list[_Call[Any]]:
        """Tracked calls that a worker is running, or (``orphans``) may yet start."""
        now = time.monotonic()
        with self._lock:
            self.calls = [call for call in self.calls if not call.settled(now)]
            if orphans:
                return list(self.calls)
            return [call for call in self.calls if call.given_up_at is None]


class _Call(Generic[T]):
    """One function handed to the real ``run_sync``, as the worker runs it."""

    #: A call whose ``run_sync`` raised before a worker started it never runs (the
    #: worker skips a cancelled future); allow this long for a start in flight.
    ORPHAN_SECONDS = 0.02

    def __init__(
        self, probe: Probe, func: Callable[..., T], style: Style | None
    ) -> None:
        self._probe = probe
        self._func = func
        self._style = style
        self.started = False
        self.finished = False
        self.given_up_at: float | None = None  # when run_sync raised, if unstarted

    def settled(self, now: float) -> bool:
        if self.finished:
            return True
        if self.started or self.given_up_at is None:
            return False
        return now - self.given_up_at > self.ORPHAN_SECONDS

    def __call__(self, *args: object) -> T:
        probe, style = self._probe, self._style
        self.started = True
        try:
            if style in (Style.SCOPE_DURING, Style.NATIVE_PRE):
                probe._cancel_from_worker()
            if style in (Style.NATIVE_IN, Style.NATIVE_REPEAT):
                times = 3 if style is Style.NATIVE_REPEAT else 1
                with probe._cancelling_at_first_system_call(times):
                    result = probe._work(self._func, args)
            else:
                result = probe._work(self._func, args)
            if style is Style.NATIVE_POST:
                probe._cancel_from_worker()
            return result
        finally:
            self.finished = True


class _ProfileCancel:
    """Context manager: cancel from inside the work, at its first system call.

    A profile function (this thread only) waits for the first call of an ``os``
    function or a file method made by the work, and cancels right there: the work
    has started, and has not finished.  If the work makes no such call, the
    cancellation comes after it, before the worker returns.
    """

    def __init__(self, probe: Probe, times: int) -> None:
        self._probe = probe
        self._times = times
        self._fired = False
        # The installed hook is referenced here too, and it stays installed until
        # __exit__: it used to remove itself, so that sys.setprofile(None) freed
        # the very object the interpreter was calling.  Twice on CPython 3.11
        # (once in CI, once in 548 pytest runs of the spooled block trials) the
        # interpreter then failed to call the hook at a function's entry
        # ("'traceback' object is not callable"), as if it called freed memory.
        self._hook = self._profile

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        if self._fired or event != "c_call" or not _is_system_call(arg):
            return
        self._fired = True
        self._probe._cancel_from_worker(self._times)

    def __enter__(self) -> None:
        sys.setprofile(self._hook)

    def __exit__(self, *exc_info: object) -> None:
        sys.setprofile(None)
        if not self._fired:
            self._fired = True
            self._probe._cancel_from_worker(self._times)


def plan_cases(kinds: list[PointKind], *, native: bool) -> Iterator[Plan]:
    """Every (point, style) to sweep for an operation with these await points."""
    for index, kind in enumerate(kinds):
        styles = [Style.SCOPE_BEFORE]
        if kind is PointKind.THREAD:
            styles.append(Style.SCOPE_DURING)
        if native:
            styles.append(Style.NATIVE_BEFORE)
            if kind is PointKind.THREAD:
                styles += [Style.NATIVE_PRE, Style.NATIVE_IN, Style.NATIVE_POST]
                styles.append(Style.NATIVE_REPEAT)
        for style in styles:
            yield Plan(index, style)
    if kinds:
        yield Plan(len(kinds) - 1, Style.SCOPE_AFTER)
        if native:
            yield Plan(len(kinds) - 1, Style.NATIVE_AFTER)


@dataclass
class SweepReport:
    name: str
    kinds: list[PointKind]
    cases: int
    failures: list[str]  # a broken promise: leak, lost data, lost cancellation
    late: list[str]  # returned normally, leaving the cancellation pending

    def summary(self) -> str:
        points = "".join(
            "T" if kind is PointKind.THREAD else "c" for kind in self.kinds
        )
        return f"{self.name}: points [{points}], {self.cases} cases"


class Sweeper:
    """Runs trials under a :class:`Probe`, uncancelled and then at every point."""

    def __init__(self, probe: Probe, backend: str) -> None:
        self.probe = probe
        self.native = backend == "asyncio"
        self.cancelled_exc = anyio.get_cancelled_exc_class()

    async def _attempt_in_scope(self, trial: Trial) -> Result:
        outcome = Outcome.COMPLETED
        error: BaseException | None = None
        after_ran = False
        scope = anyio.CancelScope()
        with anyio.move_on_after(HANG_SECONDS) as guard:
            with scope:
                self.probe.scope = scope
                try:
                    await trial.run()
                except self.cancelled_exc:
                    outcome = Outcome.CANCELLED
                    raise
                except BodyError:
                    outcome = Outcome.BODY_ERROR
                except Exception as exc:
                    outcome, error = Outcome.OTHER_ERROR, exc
                self.probe.stop()
                await self.probe.real_checkpoint()
                after_ran = True
        self.probe.stop()
        if guard.cancelled_caught:
            raise Hung
        return Result(outcome, error, after_ran, scope.cancelled_caught)

    async def _attempt_in_task(self, trial: Trial) -> Result:
        result = Result(Outcome.COMPLETED, None, False, None)

        async def attempt() -> None:
            self.probe.task = asyncio.current_task()
            try:
                await trial.run()
            except asyncio.CancelledError:
                result.outcome = Outcome.CANCELLED
                return
            except BodyError:
                result.outcome = Outcome.BODY_ERROR
            except Exception as exc:
                result.outcome, result.error = Outcome.OTHER_ERROR, exc
            finally:
                self.probe.stop()
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                return
            result.after_ran = True

        task = asyncio.get_running_loop().create_task(attempt())
        done, _ = await asyncio.wait({task}, timeout=HANG_SECONDS)
        self.probe.task = None
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=1)
            raise Hung
        if not task.cancelled():
            task.result()
        return result

    async def _drain_workers(self, *, orphans: bool) -> bool:
        """Wait (without blocking the loop) for the tracked worker calls to return."""
        deadline = time.monotonic() + 10
        while self.probe.pending_calls(orphans=orphans):
            if time.monotonic() > deadline:
                return False
            await anyio.sleep(0.0005)
        return True

    async def run_once(
        self, trial: Trial, plan: Plan | None
    ) -> tuple[list[str], Result]:
        """Set up, run under ``plan``, verify, tear down; return what went wrong.

        Raises :class:`Hung` if any of it does not end in time (a wait that the
        package shields from cancellation can still hang for good: CI's time
        limit is the last resort there).
        """
        with anyio.move_on_after(3 * HANG_SECONDS):
            return await self._run_once(trial, plan)
        raise Hung

    async def _run_once(
        self, trial: Trial, plan: Plan | None
    ) -> tuple[list[str], Result]:
        problems: list[str] = []
        before = open_descriptors()
        await trial.setup()
        self.probe.start(plan)
        if plan is not None and plan.style.native:
            result = await self._attempt_in_task(trial)
        else:
            result = await self._attempt_in_scope(trial)
        if self.probe.working_calls and trial.waits_for_workers:
            problems.append("returned while its worker was still at work")
        if trial.body_raises and result.outcome is Outcome.COMPLETED:
            problems.append("the body's own error vanished")
        if not await self._drain_workers(orphans=False):
            problems.append("a worker call never returned")
        if plan is not None and not self.probe.injected:
            problems.append("the await point was never reached")
        if result.outcome is Outcome.OTHER_ERROR:
            # The whole traceback: such an error is rare and may not come back.
            assert result.error is not None
            trace = "".join(traceback.format_exception(result.error))
            problems.append(f"raised {result.error!r}\n{trace}")
        now = open_descriptors()
        if before - now:
            problems.append(
                f"closed descriptors it did not own: {sorted(before - now)}"
            )
        problems += await trial.verify(result.outcome, len(now - before))
        await trial.teardown()
        # A call given up before it started might yet start: wait that out too,
        # so that nothing it did is blamed on the next run.
        await self._drain_workers(orphans=True)
        leaked = open_descriptors() - before
        if leaked:
            problems.append(f"descriptors still open after teardown: {sorted(leaked)}")
        if listing(trial.dir):
            problems.append(f"left after teardown: {listing(trial.dir)}")
            clear_directory(trial.dir)
        return problems, result

    def delivery_problems(
        self, plan: Plan, total: int, result: Result
    ) -> tuple[list[str], list[str]]:
        """Whether the injected cancellation reached the caller, and in time.

        Returns the problems that break a promise whatever one's reading of "let
        the cancellation through" (a lost cancellation), and, apart, the cases
        where the operation returned normally and left the cancellation pending
        for the caller's next checkpoint although it was cancelled before one of
        its await points.
        """
        lost: list[str] = []
        late: list[str] = []
        outcome = result.outcome
        if outcome is Outcome.CANCELLED:
            if result.scope_caught is False:
                lost.append("raised a cancellation that its scope did not catch")
            return lost, late
        if outcome is not Outcome.COMPLETED:
            # The body's error (or another) leaves the scope: nothing to deliver to.
            return lost, late
        if result.after_ran:
            lost.append("the cancellation was lost: the next checkpoint did not raise")
        elif result.scope_caught is False:
            lost.append("its scope did not catch the cancellation")
        # Returning is right if the cancellation came after (or during) the last
        # await point; otherwise the operation itself should have raised it.
        late_is_fine = plan.style.after_last or (
            plan.style.in_worker and plan.point == total - 1
        )
        if not late_is_fine:
            late.append(
                "returned normally although cancelled before its last await point"
                " (the cancellation only reached the caller's next checkpoint)"
            )
        return lost, late

    async def sweep(self, name: str, make: Callable[[], Trial]) -> SweepReport:
        report = SweepReport(name, [], 0, [], [])
        # Two uncancelled runs: the second is the one counted, in case the first
        # takes a one-off path (something probed once and cached).
        counts: list[list[PointKind]] = []
        for _ in range(2):
            trial = make()
            try:
                problems, result = await self.run_once(trial, None)
            except Hung:
                report.failures.append("uncancelled run hung")
                return report
            counts.append(list(self.probe.kinds))
            expected = Outcome.BODY_ERROR if trial.body_raises else Outcome.COMPLETED
            if result.outcome not in (expected, Outcome.OTHER_ERROR):
                problems.append(f"{result.outcome.value}: {result.error!r}")
            report.failures += [f"uncancelled run: {problem}" for problem in problems]
        report.kinds = kinds = counts[1]
        if counts[0] != counts[1]:
            report.failures.append(f"await points differ between runs: {counts}")
        if make().uses_threads and PointKind.THREAD not in kinds:
            report.failures.append("no worker-thread call seen: the probe is not wired")
        if report.failures:
            return report
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for plan in plan_cases(kinds, native=self.native):
                report.cases += 1
                try:
                    problems, result = await self.run_once(make(), plan)
                except Hung:
                    report.failures.append(
                        f"{plan.label(len(kinds))}: hung (sweep stopped there)"
                    )
                    break
                lost, late = self.delivery_problems(plan, len(kinds), result)
                problems += lost
                problems += [f"warned: {warning.message}" for warning in caught]
                caught.clear()
                label = f"{plan.label(len(kinds))} ({result.outcome.value})"
                report.failures += [f"{label}: {problem}" for problem in problems]
                report.late += [f"{label}: {problem}" for problem in late]
            gc.collect()
            report.failures += [f"after the sweep, warned: {w.message}" for w in caught]
        return report
