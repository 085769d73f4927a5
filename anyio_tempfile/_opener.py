"""The constructor object: awaitable once, or entered once with ``async with``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar


class _AsyncResource(Protocol):
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


ResourceT = TypeVar("ResourceT", bound=_AsyncResource)


class Opener(Generic[ResourceT]):
    """What a file constructor returns.

    ``await`` it for the open file (then close it yourself), or use it as
    ``async with`` to have the file closed, and deleted per its semantics, when
    the block exits.  Nothing is created until then.  Either way it is used once:
    a second ``await`` or ``async with`` is a ``RuntimeError``, never a second
    file behind the caller's back.
    """

    __slots__ = ("_open", "_resource", "_used")

    def __init__(self, open: Callable[[], Coroutine[Any, Any, ResourceT]]) -> None:
        self._open = open
        self._used = False
        self._resource: ResourceT | None = None

    def _start(self) -> Coroutine[Any, Any, ResourceT]:
        if self._used:
            raise RuntimeError(
                "this temporary file constructor was already awaited or entered; "
                "call the constructor again for another file"
            )
        self._used = True
        return self._open()

    def __await__(self) -> Generator[Any, None, ResourceT]:
        return self._start().__await__()

    async def __aenter__(self) -> ResourceT:
        self._resource = await self._start()
        return self._resource

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._resource is not None
        await self._resource.__aexit__(exc_type, exc_value, traceback)
