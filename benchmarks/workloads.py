"""The workloads: each written once, against :class:`.implementations.Implementation`.

Every workload checks its own result (the bytes read back, the files gone, the
spooled file rolled over or not) and raises :class:`VerificationError` when it
is wrong: a fast wrong answer is not a result.  On top of that the harness
checks, after every run, that no file and no descriptor was left behind.

The data is made in ``__init__``, once per process, from fixed seeds, so it is
the same in every round and never part of the timing.
"""

from __future__ import annotations

import functools
import os
import random
import stat
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import ClassVar, Protocol

import anyio

from .implementations import Implementation

KiB = 1024
MiB = 1024 * KiB


class VerificationError(Exception):
    """A workload's result was wrong, or it left something behind."""


class Span(Protocol):
    """The harness's stopwatch, as a workload sees it."""

    def untimed(self) -> AbstractContextManager[None]: ...


@functools.cache
def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(size: int, count: int, seed: int) -> list[bytes]:
    """``count`` distinct random pieces of ``size`` bytes each."""
    blob = random_bytes(size * count, seed)
    return [blob[i * size : (i + 1) * size] for i in range(count)]


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 10_000 and n % 1000 == 0 else str(n)


class Workload(ABC):
    """One workload at one size; ``run`` is what gets timed."""

    key: ClassVar[str]  # for --workload and the JSON file
    full_size: ClassVar[int]
    quick_size: ClassVar[int]
    #: At most this many rounds, for a workload too slow to repeat as often.
    max_rounds: ClassVar[int | None] = None

    def __init__(self, size: int) -> None:
        self.size = size

    @property
    @abstractmethod
    def title(self) -> str: ...

    @abstractmethod
    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        """Do the work in directory ``where``; raise VerificationError if wrong."""

    def wrong(self, implementation: Implementation, what: str) -> VerificationError:
        return VerificationError(f"{self.key}/{implementation.name}: {what}")


class CreateTemporaryFile(Workload):
    key = "create-tempfile"
    full_size = 300
    quick_size = 50

    @property
    def title(self) -> str:
        return f"create+close TemporaryFile x{self.size}"

    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        for _ in range(self.size):
            async with implementation.temporary_file(where) as file:
                # An unnamed file's name is its descriptor: check it is one.
                if not stat.S_ISREG(os.fstat(file.name).st_mode):
                    raise self.wrong(implementation, "not a regular file")


class CreateNamedTemporaryFile(Workload):
    key = "create-named"
    full_size = 300
    quick_size = 50

    @property
    def title(self) -> str:
        return f"create+close NamedTemporaryFile x{self.size}"

    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        names: list[str] = []
        for _ in range(self.size):
            async with implementation.named_temporary_file(where) as file:
                names.append(file.name)
        with span.untimed():
            if len(set(names)) != self.size:
                raise self.wrong(implementation, "names were reused")
            if any(os.path.dirname(name) != where for name in names):
                raise self.wrong(implementation, "a file was made outside dir")
            # That they are gone again, the harness checks.


class ConcurrentNamedFiles(Workload):
    key = "concurrent-named"
    full_size = 500
    quick_size = 50

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.payloads = pieces(4 * KiB, size, seed=1)

    @property
    def title(self) -> str:
        return f"{self.size} concurrent named files of 4 KiB"

    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        async def one(payload: bytes) -> None:
            async with implementation.named_temporary_file(where) as file:
                if await file.write(payload) != len(payload):
                    raise self.wrong(implementation, "short write")
                await file.seek(0)
                if await file.read() != payload:
                    raise self.wrong(implementation, "read back other bytes")

        async with anyio.create_task_group() as tasks:
            for payload in self.payloads:
                tasks.start_soon(one, payload)


class SmallDiskIO(Workload):
    key = "small-io-disk"
    full_size = 100_000
    quick_size = 5_000
    # 200k worker-thread hops each for anyio and aiofiles: 15-40 s a run here,
    # more than half of a full round.  Three rounds still give a median.
    max_rounds = 3

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.records = pieces(64, size, seed=2)

    @property
    def title(self) -> str:
        n = _count(self.size)
        return f"{n} writes, {n} reads of 64 B, TemporaryFile"

    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        async with implementation.temporary_file(where) as file:
            for record in self.records:
                if await file.write(record) != 64:
                    raise self.wrong(implementation, "short write")
            await file.seek(0)
            for index, record in enumerate(self.records):
                if await file.read(64) != record:
                    raise self.wrong(implementation, f"record {index} differs")
            if await file.read(64) != b"":
                raise self.wrong(implementation, "more data than written")


class BigDiskIO(Workload):
    key = "big-io-disk"
    full_size = 256  # MiB
    quick_size = 8
    CHUNKS = 16  # distinct 1 MiB chunks, repeated: 16 MiB of data to make, not 256

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.chunks = pieces(MiB, min(size, self.CHUNKS), seed=3)

    @property
    def title(self) -> str:
        return f"{self.size} MiB in 1 MiB chunks, write+read"

    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        chunks = self.chunks
        async with implementation.temporary_file(where) as file:
            for index in range(self.size):
                if await file.write(chunks[index % len(chunks)]) != MiB:
                    raise self.wrong(implementation, "short write")
            if await file.seek(0, os.SEEK_END) != self.size * MiB:
                raise self.wrong(implementation, "wrong size on disk")
            await file.seek(0)
            for index in range(self.size):
                if await file.read(MiB) != chunks[index % len(chunks)]:
                    raise self.wrong(implementation, f"MiB {index} differs")
            if await file.read(MiB) != b"":
                raise self.wrong(implementation, "more data than written")


class SpooledSmallWrites(Workload):
    key = "spooled-small-writes"
    full_size = 100_000
    quick_size = 5_000

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.records = pieces(64, size, seed=2)
        self.expected = b"".join(self.records)

    @property
    def title(self) -> str:
        return f"{_count(self.size)} writes of 64 B, in-memory spooled"

    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        async with implementation.spooled_temporary_file(0, where) as file:
            for record in self.records:
                if await file.write(record) != 64:
                    raise self.wrong(implementation, "short write")
            if implementation.is_rolled(file):
                raise self.wrong(implementation, "rolled over with max_size=0")
            await file.seek(0)
            if await file.read() != self.expected:
                raise self.wrong(implementation, "read back other bytes")


class SpooledUploads(Workload):
    """Uploads that outgrow ``max_size``: half in memory, then the rollover."""

    key = "spooled-uploads"
    full_size = 200
    quick_size = 20
    CHUNK = 64 * KiB
    CHUNKS_PER_UPLOAD = 32  # 2 MiB
    MAX_SIZE = 1 * MiB
    POOL = 64  # upload i, chunk j is pool[(i + j) % POOL]: each upload differs

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.pool = pieces(self.CHUNK, self.POOL, seed=4)

    @property
    def title(self) -> str:
        return f"{self.size} concurrent spooled uploads, 2 MiB, max_size 1 MiB"

    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        chunk_size, pool = self.CHUNK, self.pool

        async def upload(number: int) -> None:
            chunks = [
                pool[(number + j) % self.POOL] for j in range(self.CHUNKS_PER_UPLOAD)
            ]
            spooled = implementation.spooled_temporary_file(self.MAX_SIZE, where)
            async with spooled as file:
                for chunk in chunks:
                    if await file.write(chunk) != chunk_size:
                        raise self.wrong(implementation, "short write")
                if not implementation.is_rolled(file):
                    raise self.wrong(implementation, "2 MiB did not roll over")
                await file.seek(0)
                data = await file.read()
            # bytes slices, not memoryview ones: a memoryview compares item by
            # item (7 ms for 2 MiB), which was most of every implementation's
            # loop lateness here; a bytes slice is copied and memcmp'd (0.3 ms).
            if len(data) != chunk_size * len(chunks) or any(
                data[j * chunk_size : (j + 1) * chunk_size] != chunk
                for j, chunk in enumerate(chunks)
            ):
                raise self.wrong(implementation, f"upload {number} differs")

        async with anyio.create_task_group() as tasks:
            for number in range(self.size):
                tasks.start_soon(upload, number)


class DirectoryCleanup(Workload):
    """Timed: making the directory and removing it; not: filling it."""

    key = "directory-cleanup"
    full_size = 2000
    quick_size = 200
    PER_DIRECTORY = 100

    @property
    def title(self) -> str:
        directories = -(-self.size // self.PER_DIRECTORY)
        return f"TemporaryDirectory of {self.size} files ({directories} dirs)"

    def fill(self, path: str) -> int:
        """Blocking: put ``size`` small files in ``path``, in subdirectories."""
        made = 0
        while made < self.size:
            subdirectory = os.path.join(path, f"d{made // self.PER_DIRECTORY}")
            os.mkdir(subdirectory)
            for _ in range(min(self.PER_DIRECTORY, self.size - made)):
                name = os.path.join(subdirectory, f"f{made}")
                descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(descriptor, b"sixteen bytes..\n")
                os.close(descriptor)
                made += 1
        return made

    async def run(self, implementation: Implementation, where: str, span: Span) -> None:
        async with implementation.temporary_directory(where) as path:
            # Filled from a worker thread whatever the implementation, and left
            # out of the time: what is measured is the directory's own work.
            with span.untimed():
                if await anyio.to_thread.run_sync(self.fill, path) != self.size:
                    raise self.wrong(implementation, "could not fill the directory")
        with span.untimed():
            if await anyio.Path(path).exists():
                raise self.wrong(implementation, "the directory is still there")


#: In the tables' order.
WORKLOADS: tuple[type[Workload], ...] = (
    CreateTemporaryFile,
    CreateNamedTemporaryFile,
    ConcurrentNamedFiles,
    SmallDiskIO,
    BigDiskIO,
    SpooledSmallWrites,
    SpooledUploads,
    DirectoryCleanup,
)


def build(*, quick: bool, keys: set[str] | None = None) -> list[Workload]:
    """The workloads at their quick or full size (only ``keys``, if given)."""
    return [
        cls(cls.quick_size if quick else cls.full_size)
        for cls in WORKLOADS
        if keys is None or cls.key in keys
    ]
