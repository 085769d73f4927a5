"""SpooledTemporaryFile's storage: in memory until it rolls over to disk.

The state is explicit, as in the Rust ``tempfile`` crate's ``SpooledTempFile``:
every operation is a ``match`` on it.

* :class:`InMemory` -- a ``BytesIO`` (or a ``TextIOWrapper`` over one).  Its
  operations run on the loop and never touch a worker thread; one in
  ``CHECKPOINT_EVERY`` is a full checkpoint, the others return without
  yielding, as buffered reads of ``asyncio.StreamReader`` do.
* :class:`OnDisk` -- an unnamed on-disk temporary file, driven from worker threads.
* :class:`RollingOver` -- the brief step between them: a worker is copying the
  bytes to disk.  Nothing else touches the buffer meanwhile; other operations on
  the same file wait for the step to end.

A rollover is all or nothing.  The new file is created, filled and positioned in
one worker call; if that fails or is cancelled, the new file is closed (so it is
gone) and the data stays wholly in memory, position unchanged.  Only after it
succeeded does the state become :class:`OnDisk` and the buffer get freed.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import anyio
from anyio import CancelScope, CapacityLimiter
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

from . import _threads
from ._budget import Reservation, SpoolBudget
from ._cleanup import Closer
from ._create import FileOptions, open_file
from ._disk import DiskStorage
from ._names import NameParts


@dataclass
class InMemory:
    """The data is in ``file``, a ``BytesIO`` or a ``TextIOWrapper`` over one.

    ``memory`` is what the buffer holds against the file's budget, if any.
    """

    file: io.BytesIO | io.TextIOWrapper
    memory: Reservation


@dataclass
class RollingOver:
    """A worker is copying ``in_memory`` to disk; ``finished`` is set after."""

    in_memory: InMemory
    finished: anyio.Event


@dataclass
class OnDisk:
    """The data is in an unnamed temporary file on disk."""

    disk: DiskStorage


T = TypeVar("T")

# In memory, one operation in this many is a full checkpoint (see _ready).
CHECKPOINT_EVERY = 64

# Codecs whose first write carries a byte-order mark.
_BOM_CODECS = frozenset({"utf-8-sig", "utf-16", "utf-32"})

_NARROW_CODECS = frozenset(
    {
        "ascii",
        "cp1252",
        "iso8859-1",
        "latin-1",
        "utf-8",
        "utf-8-sig",
        "utf-16",
        "utf-16-be",
        "utf-16-le",
        "utf-32",
        "utf-32-be",
        "utf-32-le",
    }
)


def _copy_cost(size: int | None) -> int:
    """What reading ``size`` from memory costs (see ``SpooledStorage._ready``)."""
    if size is None or size < 0:
        return CHECKPOINT_EVERY  # all of it: copy size unknown
    return 1 + (size >> 10)


def _data_cost(data: Any) -> int:
    """What writing ``data`` to memory costs (see ``SpooledStorage._ready``)."""
    if isinstance(data, (bytes, str)):
        return 1 + (len(data) >> 10)
    return CHECKPOINT_EVERY  # a buffer of some other kind: its size is a question


def _write_position(memory: io.BytesIO | io.TextIOWrapper) -> int:
    """The byte position the next write to ``memory`` goes to."""
    if isinstance(memory, io.TextIOWrapper):
        # A text write goes where the wrapper's read-ahead left the buffer.
        memory.flush()
        raw: io.BytesIO = memory.buffer  # type: ignore[assignment]
        return raw.tell()
    return memory.tell()


def _positioned_as_rolled(file: IO[Any], written: T) -> T:
    """In a worker, after writing the data that made the file roll over.

    The standard library writes that data in memory, then rolls over, leaving a
    text file freshly positioned with nothing pending.  Seeking to where the
    write ended leaves ours the same (a text file with a pending write serves
    stale data to readline(), a CPython quirk a fresh position avoids).
    """
    if isinstance(file, io.TextIOWrapper):
        file.seek(file.tell(), 0)
    return written


def _attempt(work: Callable[[], T]) -> Callable[[], T]:
    """Run ``work()`` now; a callable that returns its result or raises its error.

    For a worker call that must hand back what it made even when its last step
    fails: the error is raised on the loop, once the rest is recorded.
    """
    try:
        result = work()
    except Exception as exc:
        error = exc

        def fail() -> T:
            raise error

        return fail
    return lambda: result


def _byte_count(data: Any) -> int:
    # What BytesIO.write will return, without copying; TypeError for a str,
    # BufferError for a strided view (BytesIO.write refuses both).
    if type(data) is bytes:
        return len(data)
    view = memoryview(data)
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view.nbytes


class SpooledStorage:
    """The I/O of one spooled temporary file."""

    __slots__ = (
        "_limiter",
        "_memory_writes_now",
        "_narrow_codec",
        "_options",
        "_parts",
        "_state",
        "_unchecked",
        "_writes_bom",
        "max_size",
    )

    def __init__(
        self,
        max_size: int,
        parts: NameParts[Any],
        options: FileOptions,
        limiter: CapacityLimiter | None,
        budget: SpoolBudget | None = None,
    ) -> None:
        self.max_size = max_size
        self._unchecked = 0  # in-memory operations since the last checkpoint
        self._parts = parts
        self._options = options
        self._limiter = limiter
        buffer: io.BytesIO | io.TextIOWrapper
        if options.text:
            buffer = io.TextIOWrapper(
                io.BytesIO(),
                encoding=options.encoding,
                errors=options.errors,
                newline=options.newline,
            )
        else:
            buffer = io.BytesIO()
        self._state: InMemory | RollingOver | OnDisk = InMemory(
            buffer, Reservation(budget)
        )
        # Codecs that never take more than 4 bytes a character (plus a BOM):
        # for them a write far from max_size needs no trial encoding.
        codec = codecs.lookup(buffer.encoding).name if options.text else ""  # type: ignore[union-attr]
        self._narrow_codec = codec in _NARROW_CODECS
        self._writes_bom = codec in _BOM_CODECS
        # Whether write_now() may write bytes to memory after checking only the
        # size: not for text (the encoded size needs working out) nor against a
        # budget (the memory must be reserved first).
        self._memory_writes_now = not options.text and budget is None

    # -- attributes -----------------------------------------------------------

    def _current_file(self) -> IO[Any]:
        match self._state:
            case InMemory(file=file) | RollingOver(in_memory=InMemory(file=file)):
                return file
            case OnDisk(disk=disk):
                return disk.wrapped

    @property
    def rolled(self) -> bool:
        return isinstance(self._state, OnDisk)

    @property
    def wrapped(self) -> IO[Any]:
        return self._current_file()

    @property
    def closed(self) -> bool:
        return self._current_file().closed

    @property
    def name(self) -> Any:
        return self._current_file().name if self.rolled else None

    @property
    def mode(self) -> str:
        return self._current_file().mode if self.rolled else self._options.mode

    # -- the state machine ----------------------------------------------------

    def _ready(self, cost: int = 1) -> InMemory | None:
        """The in-memory state, if this operation may skip its checkpoint.

        Operations on memory need no I/O, so, as ``asyncio.StreamReader.read``
        with buffered data, most return without yielding.  Each costs one, plus
        one a KiB it copies; once the costs since the last full checkpoint (a
        schedule point, where a cancellation is delivered) reach
        ``CHECKPOINT_EVERY``, the operation takes one first.  So 64 small writes
        share a checkpoint, and a 1 MiB write has its own.
        """
        state = self._state
        if type(state) is InMemory:
            self._unchecked += cost
            if self._unchecked < CHECKPOINT_EVERY:
                return state
        return None

    async def _settled(self) -> InMemory | OnDisk:
        """The state to operate on, once no rollover is in flight.

        An in-memory operation that is due a checkpoint gets it here, before
        it touches the buffer, so a cancelled call has done nothing.
        """
        checkpointed = False
        while True:
            match self._state:
                case RollingOver(finished=finished):
                    await finished.wait()
                    checkpointed = True
                case InMemory() if not checkpointed:
                    await checkpoint()
                    self._unchecked = 0
                    checkpointed = True
                case InMemory() | OnDisk() as state:
                    return state

    async def rollover(self) -> None:
        """Move the data to disk now, if it is still in memory."""
        match self._ready() or await self._settled():
            case InMemory() as in_memory:
                await self._roll_over(in_memory)
            case OnDisk():
                pass

    async def _roll_over(
        self, in_memory: InMemory, beside: str | bytes | None = None
    ) -> DiskStorage:
        disk, _ = await self._roll(in_memory, beside, None)
        return disk

    async def _roll_over_to_write(
        self, in_memory: InMemory, write: Callable[[IO[Any]], T]
    ) -> T:
        """Roll over and make the write that needs it, in one worker call.

        The write goes where it would have gone in memory.  If it fails, the
        rollover stands all the same, as if they had been two calls; if the
        caller is cancelled, neither happened: the data stays in memory.
        """
        _, write_outcome = await self._roll(in_memory, None, write)
        assert write_outcome is not None
        return write_outcome()  # type: ignore[no-any-return]

    async def _roll(
        self,
        in_memory: InMemory,
        beside: str | bytes | None,
        write: Callable[[IO[Any]], Any] | None,
    ) -> tuple[DiskStorage, Callable[[], Any] | None]:
        if in_memory.file.closed:
            raise ValueError("I/O operation on closed file.")
        rolling = RollingOver(in_memory, anyio.Event())
        self._state = rolling

        def copy_then_write() -> tuple[DiskStorage, Callable[[], Any] | None]:
            disk = self._copy_to_disk(in_memory, beside, for_write=write is not None)
            if write is None:
                return disk, None
            file, make_write = disk.wrapped, write
            return disk, _attempt(lambda: _positioned_as_rolled(file, make_write(file)))

        try:
            disk, write_outcome = await _threads.create(
                copy_then_write,
                lambda made: made[0].close_now(),
                self._limiter,
            )
        except BaseException:
            self._state = in_memory
            raise
        else:
            self._state = OnDisk(disk)
            in_memory.file.close()  # frees the buffer
            in_memory.memory.release()
            return disk, write_outcome
        finally:
            rolling.finished.set()

    def _copy_to_disk(
        self, in_memory: InMemory, beside: str | bytes | None, *, for_write: bool
    ) -> DiskStorage:
        """In a worker: a new unnamed file with the same bytes and position.

        In ``dir``, or in the directory of the path ``beside`` if given.
        """
        parts = self._parts
        if beside is not None:
            directory = os.path.dirname(os.path.abspath(beside))
            parts = dataclasses.replace(parts, dir=parts.same_type(directory))
        memory = in_memory.file
        # Before a write, where the write will go: for text after a read, the
        # end of what the wrapper read ahead, not tell() (a CPython quirk the
        # standard library's spooled file shows, as it writes before it rolls).
        position = _write_position(memory) if for_write else memory.tell()
        opened = open_file(parts, self._options, "unnamed")
        file = opened.file
        try:
            if isinstance(memory, io.TextIOWrapper):
                memory.flush()
                # The encoded bytes, so that newlines and non-ASCII text survive
                # exactly, as in the standard library's rollover.
                raw_memory: io.BytesIO = memory.buffer  # type: ignore[assignment]
                raw_disk: Any = getattr(file, "buffer")  # noqa: B009
            else:
                raw_memory, raw_disk = memory, file
            with raw_memory.getbuffer() as view:
                raw_disk.write(view)
            file.seek(position, 0)
        except BaseException:
            file.close()
            raise
        return DiskStorage(Closer(file, None, linkable=opened.linkable), self._limiter)

    async def _roll_over_if_past_max_size(self, in_memory: InMemory) -> None:
        # The standard library's own check, after a write.  The check before the
        # write already rolled over when it could tell; this catches the rest
        # (data of a type only the write itself understands).
        if self.max_size and in_memory.file.tell() > self.max_size:
            await self._roll_over(in_memory)

    def _must_go_to_disk(self, in_memory: InMemory, pieces: list[Any]) -> bool | None:
        """Whether writing ``pieces`` must wait for a rollover.

        True when the write would take the position past ``max_size`` or need
        more memory than the budget has left.  Otherwise the memory the write
        will add is reserved here, before it is written (False).  ``None`` when
        it cannot tell without writing (a closed file, data the write will
        refuse, a codec with a byte-order mark): then the write itself raises,
        or the checks after it settle the memory and roll over.
        """
        file = in_memory.file
        limited = bool(self.max_size)
        counted = in_memory.memory.counted
        if file.closed:
            return None
        if not (limited or counted):
            return False
        try:
            position = file.tell()
        except OSError:
            # A text file mid-iteration refuses tell(); the standard library
            # writes, then fails at its own tell(): the check after the write
            # does the same.
            return None
        if isinstance(file, io.TextIOWrapper):
            position = _write_position(file)
            end = self._text_end(file, pieces, position, exact=counted)
        else:
            try:
                end = position + sum(map(_byte_count, pieces))
            except (TypeError, BufferError):
                return None
        if end is None:
            return None
        if limited and end > self.max_size:
            return True
        return not in_memory.memory.grow_to(end)

    def _text_end(
        self, file: io.TextIOWrapper, pieces: list[Any], position: int, *, exact: bool
    ) -> int | None:
        """The byte position after writing ``pieces`` (``None``: can't tell).

        Unless ``exact``, a write that cannot pass ``max_size`` even at 4 bytes
        a character (newlines doubled) is answered without trial encoding.
        """
        if not all(isinstance(piece, str) for piece in pieces):
            return None
        text = "".join(pieces)
        if (
            not exact
            and self._narrow_codec
            and position + 8 * len(text) + 4 <= self.max_size
        ):
            return position
        # What TextIOWrapper.write will put in the buffer: newlines translated,
        # then encoded.
        newline = self._options.newline
        if newline != "":
            written_newline = os.linesep if newline is None else newline
            if written_newline != "\n":
                text = text.replace("\n", written_newline)
        if self._writes_bom:
            # Whether the wrapper's encoder still owes a byte-order mark depends
            # on its history (a seek to 0 resets it), which it does not expose:
            # let the write happen and the checks after it decide.
            return None
        encoder = codecs.getincrementalencoder(file.encoding)(file.errors or "strict")
        try:
            return position + len(encoder.encode(text, True))
        except UnicodeError:
            return None  # the write raises the same error

    async def _settle_memory(self, in_memory: InMemory) -> None:
        """After an in-memory change whose size was not known before."""
        memory = in_memory.memory
        if not memory.counted or in_memory.file.closed:
            return
        file = in_memory.file
        if isinstance(file, io.TextIOWrapper):
            file.flush()
            raw: io.BytesIO = file.buffer  # type: ignore[assignment]
        else:
            raw = file
        memory.settle(raw.getbuffer().nbytes)
        if memory.overdrawn:
            await self._roll_over(in_memory)

    # -- operations -----------------------------------------------------------
    # read_now() and write_now() are the calls that need neither I/O nor a
    # checkpoint, served on the spot; ``None`` sends the caller to the coroutine.

    def read_now(self, size: int | None) -> Any:
        state = self._state
        if type(state) is InMemory:
            if self._ready(_copy_cost(size)) is not None:
                return state.file.read(size)
            return None
        if type(state) is OnDisk:
            return state.disk.read_now(size)
        return None

    def write_now(self, data: Any) -> int | None:
        state = self._state
        if type(state) is InMemory:
            if type(data) is not bytes or not self._memory_writes_now:
                return None
            cost = 1 + (len(data) >> 10)
            if self._unchecked + cost >= CHECKPOINT_EVERY:
                return None
            file = state.file
            max_size = self.max_size
            if max_size and file.tell() + len(data) > max_size:
                return None  # the write waits for the rollover
            self._unchecked += cost
            return file.write(data)  # type: ignore[arg-type]  # a BytesIO
        if type(state) is OnDisk:
            return state.disk.write_now(data)
        return None

    async def read(self, size: int | None) -> Any:
        match self._ready(_copy_cost(size)) or await self._settled():
            case InMemory(file=file):
                return file.read(size)
            case OnDisk(disk=disk):
                return await disk.read(size)

    async def read1(self, size: int) -> Any:
        match self._ready() or await self._settled():
            case InMemory(file=file):
                return file.read1(size)  # type: ignore[union-attr]
            case OnDisk(disk=disk):
                return await disk.read1(size)

    async def readinto(self, buffer: Any) -> int:
        match self._ready() or await self._settled():
            case InMemory(file=file):
                return file.readinto(buffer)  # type: ignore[union-attr]
            case OnDisk(disk=disk):
                return await disk.readinto(buffer)

    async def readinto1(self, buffer: Any) -> int:
        match self._ready() or await self._settled():
            case InMemory(file=file):
                return file.readinto1(buffer)  # type: ignore[union-attr]
            case OnDisk(disk=disk):
                return await disk.readinto1(buffer)

    async def readline(self, size: int | None) -> Any:
        match self._ready() or await self._settled():
            case InMemory(file=file):
                return file.readline(size)  # type: ignore[arg-type]
            case OnDisk(disk=disk):
                return await disk.readline(size)

    async def readlines(self, hint: int | None) -> list[Any]:
        match self._ready() or await self._settled():
            case InMemory(file=file):
                return file.readlines(hint)  # type: ignore[arg-type]
            case OnDisk(disk=disk):
                return await disk.readlines(hint)

    async def write(self, data: Any) -> int:
        state = self._ready(_data_cost(data)) or await self._settled()
        if isinstance(state, OnDisk):
            return await state.disk.write(data)
        verdict = self._must_go_to_disk(state, [data])
        if verdict:
            # Roll over first: the new data goes to disk from a worker, and the
            # loop never holds more than max_size (or the budget) in memory.
            return await self._roll_over_to_write(state, lambda file: file.write(data))
        try:
            written = state.file.write(data)
        except BaseException:
            await self._settle_memory(state)
            raise
        if verdict is None:
            await self._settle_memory(state)
        if self._options.text:
            await self._roll_over_if_past_max_size(state)
        return written

    async def writelines(self, lines: Iterable[Any]) -> None:
        state = self._ready(CHECKPOINT_EVERY) or await self._settled()
        if isinstance(state, OnDisk):
            await state.disk.writelines(lines)
            return
        pieces = list(lines)
        if self._must_go_to_disk(state, pieces):  # None: settled below
            await self._roll_over_to_write(state, lambda file: file.writelines(pieces))
            return
        try:
            state.file.writelines(pieces)
        finally:
            # writelines may write some pieces before refusing one.
            await self._settle_memory(state)
        if self._options.text:
            await self._roll_over_if_past_max_size(state)

    async def seek(self, offset: int, whence: int) -> int:
        match self._ready() or await self._settled():
            case InMemory(file=file):
                return file.seek(offset, whence)
            case OnDisk(disk=disk):
                return await disk.seek(offset, whence)

    async def tell(self) -> int:
        match self._ready() or await self._settled():
            case InMemory(file=file):
                return file.tell()
            case OnDisk(disk=disk):
                return await disk.tell()

    async def truncate(self, size: int | None) -> int:
        state = self._ready() or await self._settled()
        if isinstance(state, InMemory):
            # Any size above max_size rolls over, even with max_size == 0, as in
            # the standard library; a bare truncate() sets the size to the
            # position, so it counts as that size (the standard library does not
            # check it, and then in memory and on disk give different sizes).
            if state.file.closed:
                return state.file.truncate(size)
            new_size = size
            if size is None:
                try:
                    new_size = state.file.tell()
                except OSError:
                    # A text file mid-iteration refuses tell(), not truncate():
                    # with no position to go by, truncate as the stdlib does.
                    new_size = 0
            assert new_size is not None
            if not new_size > self.max_size:
                try:
                    return state.file.truncate(size)
                finally:
                    await self._settle_memory(state)  # memory goes back
            return await (await self._roll_over(state)).truncate(size)
        return await state.disk.truncate(size)

    async def flush(self) -> None:
        match self._ready() or await self._settled():
            case InMemory(file=file):
                file.flush()
            case OnDisk(disk=disk):
                await disk.flush()

    async def persist(
        self, dest: str | bytes, *, overwrite: bool, fsync: bool
    ) -> str | bytes:
        match self._ready() or await self._settled():
            case InMemory() as in_memory:
                # Straight into dest's file system, where the link can be made.
                disk = await self._roll_over(in_memory, beside=dest)
            case OnDisk(disk=disk):
                pass
        return await disk.persist(dest, overwrite=overwrite, fsync=fsync)

    async def fileno(self) -> int:
        match self._ready() or await self._settled():
            case InMemory() as in_memory:
                return await (await self._roll_over(in_memory)).fileno()
            case OnDisk(disk=disk):
                return await disk.fileno()

    async def aclose(self, *, at_exit: bool) -> None:
        while isinstance(self._state, RollingOver):
            # Closing must finish even when cancelled: wait the rollover out.
            with CancelScope(shield=True):
                await self._state.finished.wait()
        match self._state:
            case InMemory(file=file, memory=memory):
                file.close()  # frees the buffer at once
                memory.release()
                await checkpoint_if_cancelled()
            case OnDisk(disk=disk):
                await disk.aclose(at_exit=at_exit)

    def close_now(self) -> None:
        """Close at once, blocking: for the garbage collector only."""
        match self._state:
            case (
                InMemory(file=file, memory=memory)
                | RollingOver(in_memory=InMemory(file=file, memory=memory))
            ):
                file.close()
                memory.release()
            case OnDisk(disk=disk):
                disk.close_now()
