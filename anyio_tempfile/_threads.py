"""How blocking work leaves the event loop.

Three shapes of worker-thread call, and the only place that knows about
cancellation:

* :func:`run` -- an ordinary operation (a read, a write), waited for to its end:
  the file's state (its buffers, its position) is never touched by a worker
  after the caller has moved on.
* :func:`create` -- make something (a descriptor, a file, a directory) and hand it
  to the caller, or undo it if the caller was cancelled meanwhile.
* :func:`release` -- clean something up, to the end, even if cancelled; then let
  the cancellation through.

Why :func:`create` and :func:`release` cannot simply be ``to_thread.run_sync``
under ``CancelScope(shield=True)``: a shield stops AnyIO's cancel scopes (and
trio's), but not asyncio's native ``Task.cancel()`` (``asyncio.wait_for``,
``asyncio.timeout``, a cancelled ``TaskGroup``).  That cancels the future the task
awaits, and AnyIO then skips the call if no worker had picked it up yet, or drops
its result if one had: a descriptor made in the worker would be lost.  So the
call records its own outcome, and after a native cancellation the task waits for
the worker to finish before it decides what to undo.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio
from anyio import CancelScope, CapacityLimiter, to_thread
from anyio.lowlevel import checkpoint_if_cancelled

T = TypeVar("T")


async def run(func: Callable[[], T], limiter: CapacityLimiter | None) -> T:
    """Run ``func()`` in a worker thread under ``limiter``; return its result.

    The caller resumes only once the worker is done with the file, whatever the
    cancellation: a scope's is delivered at the caller's next checkpoint (as
    AnyIO's own file I/O does), a native one is raised then.  A call that no
    worker had started when cancelled never runs.
    """
    call, interruption = await _run_to_completion(func, limiter, must_run=False)
    result = call.outcome()
    if interruption is not None:
        raise interruption
    return result


async def create(
    make: Callable[[], T], undo: Callable[[T], object], limiter: CapacityLimiter | None
) -> T:
    """Run ``make()`` in a worker; return what it made, or undo it if cancelled.

    Whatever the cancellation (an AnyIO or trio scope before, during or right
    after the call, or asyncio's ``Task.cancel()``), the caller never resumes
    while something it will not receive still exists: the worker is waited for,
    ``undo`` runs to its end in a worker, and then the cancellation is raised.
    """
    call, interruption = await _run_to_completion(make, limiter, must_run=False)
    made = call.outcome()  # make's own error: nothing was made
    if interruption is None:
        try:
            # A scope cancelled while we were shielded is delivered here.
            await checkpoint_if_cancelled()
        except BaseException as exc:
            interruption = exc
    if interruption is not None:
        await release(lambda: undo(made), limiter)
        raise interruption
    return made


async def release(func: Callable[[], T], limiter: CapacityLimiter | None) -> T:
    """Run a cleanup in a worker to its end, even if the caller is cancelled.

    Any cancellation that arrived meanwhile, a scope's or a native one, is
    raised once the cleanup is done.  An error of the cleanup itself wins over
    the cancellation: it may mean lost data.
    """
    call, interruption = await _run_to_completion(func, limiter, must_run=True)
    result = call.outcome()
    if interruption is not None:
        raise interruption
    # A scope cancelled meanwhile is delivered now, once the work is done: the
    # caller learns of it from this call, as from trio's aclose().
    await checkpoint_if_cancelled()
    return result


class _WorkerCall(Generic[T]):
    """One call for a worker thread that the loop can wait for by itself.

    The worker records whether it started the call and how the call ended, so
    that the loop knows what exists even when AnyIO has dropped the result.
    """

    __slots__ = (
        "_abandoned",
        "_error",
        "_func",
        "_lock",
        "_result",
        "_started",
        "finished",
    )

    def __init__(self, func: Callable[[], T]) -> None:
        self._func = func
        self._lock = threading.Lock()
        self._started = False
        self._abandoned = False
        self._result: T | None = None
        self._error: BaseException | None = None
        # Polled, not waited on (see _wait_until_finished): a plain flag is
        # enough, and cheaper than an Event on every call.
        self.finished = False

    def __call__(self) -> None:
        """In the worker: run the call unless the loop has given up on it."""
        with self._lock:
            if self._abandoned:
                return
            self._started = True
        try:
            self._result = self._func()
        except BaseException as exc:
            self._error = exc
        finally:
            self.finished = True

    def abandon_unless_started(self) -> bool:
        """Make sure the call never runs, if no worker has started it yet."""
        with self._lock:
            if not self._started:
                self._abandoned = True
            return self._abandoned

    def outcome(self) -> T:
        """The call's result, or its exception raised."""
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


async def _run_to_completion(
    func: Callable[[], T], limiter: CapacityLimiter | None, *, must_run: bool
) -> tuple[_WorkerCall[T], BaseException | None]:
    """Run ``func`` in a worker and return only once it has finished.

    Returns the finished call and the native cancellation that arrived while it
    ran, if any.  If the cancellation came before any worker started the call,
    a call that ``must_run`` (a cleanup) is submitted again; any other is
    dropped and the cancellation raised at once, since nothing ran.
    """
    interruption: BaseException | None = None
    while True:
        call = _WorkerCall(func)
        try:
            # Unshielded, run_sync's first checkpoint lets a cancellation stop a
            # call that need not run; once the call is queued, AnyIO shields
            # the wait itself (abandon_on_cancel=False).
            if must_run:
                with CancelScope(shield=True):
                    await to_thread.run_sync(call, limiter=limiter)
            else:
                # No scope of our own: an unshielded one would change nothing
                # and cost a scope's enter and exit on every call.
                await to_thread.run_sync(call, limiter=limiter)
        except BaseException as exc:
            interruption = interruption or exc
            if call.abandon_unless_started():
                if must_run:
                    continue
                raise
            await _wait_until_finished(call)
        return call, interruption


async def _wait_until_finished(call: _WorkerCall[Any]) -> None:
    # Only reached after a native cancellation, so a short poll is fine here and
    # keeps this independent of the worker pool (whose result path was cut).
    delay = 0.0
    while not call.finished:
        try:
            with CancelScope(shield=True):
                await anyio.sleep(delay)
        except anyio.get_cancelled_exc_class():
            pass  # cancelled again: the first cancellation is re-raised later
        delay = min(delay * 2 or 0.0002, 0.01)
