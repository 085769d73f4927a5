"""The upload demo: concurrent uploads through a spooling server, every byte checked.

``nox -s demo`` runs it (or ``python examples/demo.py``, with starlette, uvicorn and
httpx installed; ``--help`` for the options).

What it shows: ``examples/upload_server.py`` runs under uvicorn on 127.0.0.1, on a
port the operating system picks, and receives 200 uploads at once (32 at a time)
of random sizes from 10 KiB to 8 MiB (log-uniform, so most fit in the spooled
files' 1 MiB ``max_size`` and the rest roll over to disk), under a 4 MiB
``SpoolBudget``: less than the uploads in flight would hold in memory, so some
small ones roll over early because of it.  Then the demo checks
that every stored file has the SHA-256 of what was sent, that the budget never
held more than its limit and holds nothing now, that no temporary file is left
in the spool directory, and that keeping the uploads copied nothing that was on
disk already: rolled-over uploads were linked into place, in-memory ones written
once.  It prints a summary and exits non-zero if any check failed.

The server runs in a subprocess rather than in a task of this process, so that
its peak RSS (``ru_maxrss``, which it reports at ``GET /stats``) measures the
server alone: the client here holds up to 32 payloads of up to 8 MiB in memory.
It also runs the server as ``python examples/upload_server.py`` is run, with
``PORT=0``: the server binds a free port itself and announces it, so no port is
picked and then raced for.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import re
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
from anyio.abc import ByteReceiveStream, Process
from anyio.streams.buffered import BufferedByteReceiveStream

SERVER = Path(__file__).with_name("upload_server.py")
KiB = 1 << 10
MiB = 1 << 20
_UNITS = {"": 1, "b": 1, "k": KiB, "kib": KiB, "m": MiB, "mib": MiB, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``"10KiB"``, ``"8MiB"``, ``"4096"``: a byte count."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if match is None or match[2].lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (say 10KiB, 8MiB)")
    return int(match[1]) * _UNITS[match[2].lower()]


def human(byte_count: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", KiB)):
        if byte_count >= size:
            return f"{byte_count / size:.1f} {unit}"
    return f"{byte_count:.0f} B"


@dataclass(frozen=True)
class Options:
    uploads: int
    concurrency: int
    min_size: int
    max_size: int
    spool_max_size: int
    budget: int
    seed: int
    timeout: float
    backend: str
    keep: bool


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--uploads", type=int, default=200, help="how many uploads (200)")
    add("--concurrency", type=int, default=32, help="uploads at once (32)")
    add("--min-size", type=parse_size, default=10 * KiB, help="smallest (10KiB)")
    add("--max-size", type=parse_size, default=8 * MiB, help="largest upload (8MiB)")
    add(
        "--spool-max-size",
        type=parse_size,
        default=1 * MiB,
        help="the spooled files' max_size (1MiB)",
    )
    add(
        "--budget",
        type=parse_size,
        default=4 * MiB,
        help="the server's SpoolBudget (4MiB: less than 32 uploads at once would "
        "hold, to see it at work; the server's own default is 64MiB)",
    )
    add("--seed", type=int, default=None, help="random seed (default: random)")
    add("--timeout", type=float, default=120.0, help="give up after (120 s)")
    add("--backend", choices=["asyncio", "trio"], default="asyncio")
    add("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.uploads < 1 or args.concurrency < 1:
        parser.error("--uploads and --concurrency must be at least 1")
    if not 0 < args.min_size <= args.max_size:
        parser.error("need 0 < --min-size <= --max-size")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    return Options(
        uploads=args.uploads,
        concurrency=args.concurrency,
        min_size=args.min_size,
        max_size=args.max_size,
        spool_max_size=args.spool_max_size,
        budget=args.budget,
        seed=seed,
        timeout=args.timeout,
        backend=args.backend,
        keep=args.keep,
    )


@dataclass(frozen=True)
class Reply:
    """What the server said about one upload."""

    name: str
    sha256: str
    size: int
    rolled: bool
    kept_by: str | None
    duplicate: bool

    @classmethod
    def parse(cls, data: Any) -> Reply:
        if not isinstance(data, dict):
            raise ValueError(f"not a JSON object: {data!r}")
        return cls(
            name=str(data["name"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            rolled=bool(data["rolled"]),
            kept_by=None if data["kept_by"] is None else str(data["kept_by"]),
            duplicate=bool(data["duplicate"]),
        )


@dataclass(frozen=True)
class Upload:
    size: int
    sha256: str
    reply: Reply | None
    error: str | None


class Payloads:
    """Distinct upload bodies, cheap to make: a slice of one random pool.

    Upload ``index`` is its number followed by a slice of the pool at an offset
    drawn from the seed, so every body differs (the server names files by their
    hash) while making one is a memory copy, not a random-number generator's
    work, which would slow the client more than the server it measures.
    """

    def __init__(self, seed: int, max_size: int) -> None:
        self._seed = seed
        self._pool = random.Random(seed).randbytes(2 * max_size)

    def make(self, index: int, size: int) -> tuple[bytes, str]:
        """Upload ``index``'s body and its SHA-256."""
        offset = random.Random(f"{self._seed}/{index}").randrange(size + 1)
        head = f"upload {index}\n".encode()[:size]
        data = head + self._pool[offset : offset + size - len(head)]
        return data, hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def start_server(
    options: Options, uploads_dir: Path, spool_dir: Path
) -> tuple[Process, str, ByteReceiveStream]:
    """``python examples/upload_server.py`` on a free port: its address, its output."""
    env = {
        **os.environ,
        "PORT": "0",
        "UPLOADS_DIR": str(uploads_dir),
        "SPOOL_DIR": str(spool_dir),
        "UPLOAD_BUDGET_BYTES": str(options.budget),
        "UPLOAD_MAX_SIZE": str(options.spool_max_size),
        "LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }
    process = await anyio.open_process(
        [sys.executable, str(SERVER)], env=env, stdin=None, stderr=None
    )
    assert process.stdout is not None
    output = BufferedByteReceiveStream(process.stdout)
    line = await output.receive_until(b"\n", 4096)
    found = re.search(rb"http://127\.0\.0\.1:\d+", line)
    if found is None:
        raise RuntimeError(f"the server said {line!r}, not its address")
    return process, found[0].decode(), output


@asynccontextmanager
async def draining(stream: ByteReceiveStream) -> AsyncIterator[None]:
    """Pass on what the server prints later, so that its pipe never fills up."""

    async def drain() -> None:
        async for chunk in stream:
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(drain)
        yield


async def wait_until_serving(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(15):
        while True:
            try:
                (await client.get("/stats")).raise_for_status()
                return
            except httpx.TransportError:
                await anyio.sleep(0.05)


async def upload_all(
    client: httpx.AsyncClient, options: Options, sizes: list[int]
) -> list[Upload]:
    results: list[Upload | None] = [None] * len(sizes)
    limiter = anyio.Semaphore(options.concurrency)
    payloads = Payloads(options.seed, max(sizes))

    async def one(index: int, size: int) -> None:
        async with limiter:
            # Copying and hashing megabytes: off the client's loop.
            data, sha256 = await anyio.to_thread.run_sync(payloads.make, index, size)
            try:
                response = await client.post("/uploads", content=data)
                response.raise_for_status()
                reply = Reply.parse(response.json())
                results[index] = Upload(size, sha256, reply, None)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                results[index] = Upload(size, sha256, None, f"{exc!r}")

    async with anyio.create_task_group() as tasks:
        for index, size in enumerate(sizes):
            tasks.start_soon(one, index, size)
    return [result for result in results if result is not None]


def check_stored(upload: Upload, uploads_dir: Path) -> str | None:
    """Why this upload is not right, or None."""
    reply = upload.reply
    if reply is None:
        return f"upload failed: {upload.error}"
    if (reply.sha256, reply.size) != (upload.sha256, upload.size):
        return f"{reply.name}: server saw {reply.size} bytes, sha256 {reply.sha256}"
    if reply.duplicate or reply.kept_by is None:
        return f"{reply.name}: reported as a duplicate"
    path = uploads_dir / reply.name
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        stored = file_sha256(path)
    except OSError as exc:
        return f"{reply.name}: not stored ({exc})"
    if stored != upload.sha256:
        return f"{reply.name}: stored file has sha256 {stored}"
    if mode != 0o600:
        return f"{reply.name}: stored with mode {oct(mode)}, not 0o600"
    return None


@dataclass(frozen=True)
class ServerStats:
    """``GET /stats`` of the server, after the uploads."""

    in_use: int
    peak: int
    max_bytes: int
    peak_rss_bytes: int

    @classmethod
    def parse(cls, data: Any) -> ServerStats:
        budget = data["budget"]
        return cls(
            in_use=int(budget["in_use"]),
            peak=int(budget["peak"]),
            max_bytes=int(budget["max_bytes"]),
            peak_rss_bytes=int(data["peak_rss_bytes"]),
        )


@dataclass(frozen=True)
class Session:
    uploads: list[Upload]
    elapsed: float
    stats: ServerStats
    server_exit: int


async def serve_and_upload(
    options: Options, workdir: Path, sizes: list[int]
) -> Session:
    """Start the server, send every upload, stop the server."""
    process, address, output = await start_server(
        options, workdir / "uploads", workdir / "spool"
    )
    try:
        async with draining(output):
            return await upload_and_stop(process, address, options, sizes)
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()


async def upload_and_stop(
    process: Process, address: str, options: Options, sizes: list[int]
) -> Session:
    async with httpx.AsyncClient(
        base_url=address,
        timeout=60,
        limits=httpx.Limits(max_connections=options.concurrency),
        trust_env=False,  # loopback: no proxy from the environment
    ) as client:
        await wait_until_serving(client)
        print(f"server: {address} (pid {process.pid})")
        started = time.perf_counter()
        uploads = await upload_all(client, options, sizes)
        elapsed = time.perf_counter() - started
        stats = ServerStats.parse((await client.get("/stats")).json())
    process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    with anyio.fail_after(15):
        server_exit = await process.wait()
    return Session(uploads, elapsed, stats, server_exit)


async def run(options: Options, workdir: Path) -> list[str]:
    """The demo proper: prints the summary, returns the failed checks."""
    uploads_dir, spool_dir = workdir / "uploads", workdir / "spool"
    rng = random.Random(options.seed)
    low, high = math.log(options.min_size), math.log(options.max_size)
    sizes = [round(math.exp(rng.uniform(low, high))) for _ in range(options.uploads)]
    print(
        f"{options.uploads} uploads of {human(options.min_size)} to "
        f"{human(options.max_size)} (log-uniform, --seed {options.seed}), "
        f"{options.concurrency} at a time, total {human(sum(sizes))}, in {workdir}"
    )
    session = await serve_and_upload(options, workdir, sizes)
    uploads, stats = session.uploads, session.stats
    failures: list[str] = []
    if session.server_exit != 0:
        failures.append(f"the server exited with {session.server_exit}")

    # Every stored file, read back and hashed.
    problems: list[str] = []
    for upload in uploads:
        problem = await anyio.to_thread.run_sync(check_stored, upload, uploads_dir)
        if problem is not None:
            problems.append(problem)
    failures += problems
    replies = [upload.reply for upload in uploads if upload.reply is not None]
    strays = sorted(set(os.listdir(uploads_dir)) - {reply.name for reply in replies})
    if strays:
        failures.append(f"unexpected entries in the uploads dir: {strays}")
    left_behind = sorted(os.listdir(spool_dir))
    if left_behind:
        failures.append(f"temporary files left in {spool_dir}: {left_behind}")
    if stats.in_use != 0:
        failures.append(f"the budget still holds {stats.in_use} bytes")
    if stats.peak > stats.max_bytes:
        failures.append("the budget's peak went past its limit")
    rolled = [reply for reply in replies if reply.rolled]
    by_budget = [reply for reply in rolled if reply.size <= options.spool_max_size]
    kept: dict[str, list[int]] = {"link": [], "write": [], "copy": []}
    for reply in replies:
        if reply.kept_by in kept:
            kept[reply.kept_by].append(reply.size)
    if sys.platform == "linux" and kept["copy"]:
        failures.append(f"{len(kept['copy'])} rolled uploads were copied, not linked")

    elapsed, total = session.elapsed, sum(reply.size for reply in replies)
    print(
        f"  uploads          {len(replies)}/{options.uploads} in {elapsed:.2f} s: "
        f"{len(replies) / elapsed:.1f} uploads/s, {total / MiB / elapsed:.1f} MiB/s"
    )
    print(
        f"  sha256           {len(uploads) - len(problems)}/{len(uploads)} stored "
        "files match what was sent"
    )
    print(
        f"  spooling         {len(replies) - len(rolled)} stayed in memory, "
        f"{len(rolled)} rolled to disk ({len(by_budget)} of them by the budget, "
        f"before max_size {human(options.spool_max_size)})"
    )
    print(
        f"  budget           peak {human(stats.peak)} of its "
        f"{human(stats.max_bytes)} limit ({stats.peak:,} of {stats.max_bytes:,} "
        f"bytes); {stats.in_use} bytes in use after"
    )
    print(f"  server peak RSS  {human(stats.peak_rss_bytes)} (ru_maxrss)")
    print(f"  temp files left  {len(left_behind)} in the spool dir")
    copied = f"; {len(kept['copy'])} copied: {human(sum(kept['copy']))}"
    print(
        f"  keeping uploads  {len(kept['link'])} linked in place: 0 bytes copied "
        f"({human(sum(kept['link']))} kept); {len(kept['write'])} in memory, "
        f"written once: {human(sum(kept['write']))}{copied if kept['copy'] else ''}"
    )
    return failures


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="anyio-tempfile-demo-"))
    try:
        failures = anyio.run(
            lambda: _with_timeout(options, workdir), backend=options.backend
        )
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for failure in failures[:20]:
        print(f"FAILED: {failure}")
    if len(failures) > 20:
        print(f"... and {len(failures) - 20} more")
    print("demo: all checks passed" if not failures else "demo: FAILED")
    return 1 if failures else 0


async def _with_timeout(options: Options, workdir: Path) -> list[str]:
    with anyio.fail_after(options.timeout):
        return await run(options, workdir)


if __name__ == "__main__":
    sys.exit(main())
