"""An upload server: bodies spooled under one memory budget, kept without a copy.

``python examples/upload_server.py`` serves on http://127.0.0.1:8000 (``PORT`` from
the environment; ``PORT=0`` picks a free port and prints it).  ``curl --data-binary
@file http://127.0.0.1:8000/uploads`` stores a file; ``curl .../stats`` shows the
memory budget.

What it shows:

- Each request body is streamed (``request.stream()``) into a
  ``SpooledTemporaryFile(max_size=1 MiB, budget=...)`` and hashed with SHA-256 on
  the way.  Small bodies stay in memory; a body past ``max_size``, or one that
  would take every upload's in-memory bytes together past the app's one shared
  ``SpoolBudget`` (64 MiB by default), rolls over to an unnamed ``O_TMPFILE`` on
  disk, in a worker thread.  So memory stays bounded however many uploads
  arrive at once.
- ``persist()`` then names the upload by its hash in the uploads directory: a
  rolled-over file is linked into place with ``linkat(2)``, not a byte copied;
  an in-memory one is written once, to an unnamed file in the uploads
  directory, then linked.  ``overwrite=False`` makes the link itself decide
  whether the content is already stored (a duplicate), with no check-then-act
  race.  The response says which happened (``kept_by``: ``link``, ``write``,
  or ``copy`` where the platform has no ``O_TMPFILE``), checked by comparing
  inodes rather than taken on trust.
- A body that is too large, a client that disconnects, a cancelled request:
  the ``async with`` block closes the spooled file, which leaves nothing behind
  and gives its memory back to the budget.

Configuration (environment, for ``python examples/upload_server.py``):
``UPLOADS_DIR`` (default ``./uploads``), ``SPOOL_DIR`` (default
``UPLOADS_DIR/.spool``: it must be on the uploads' file system for the link),
``UPLOAD_BUDGET_BYTES``, ``UPLOAD_MAX_SIZE`` (the spooled file's ``max_size``),
``UPLOAD_LIMIT_BYTES`` (largest body accepted), ``UPLOAD_FSYNC=1`` (fsync each
stored file and the directory), ``PORT``, ``LOG_LEVEL``.  In code:
``create_app(uploads_dir, budget_bytes, ...)`` returns the Starlette app.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import socket
import sys
from dataclasses import dataclass
from typing import Literal

import anyio
import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import anyio_tempfile as atf

MiB = 1 << 20
DEFAULT_BUDGET_BYTES = 64 * MiB
DEFAULT_MAX_SIZE = 1 * MiB
DEFAULT_UPLOAD_LIMIT = 1 << 30

KeptBy = Literal["link", "write", "copy"]


@dataclass(frozen=True)
class UploadStore:
    """Where uploads go, and the one budget every upload's buffer shares."""

    uploads_dir: str
    spool_dir: str
    budget: atf.SpoolBudget
    max_size: int
    upload_limit: int
    fsync: bool


def peak_rss_bytes() -> int:
    """This process's peak resident set size (``ru_maxrss``), in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # KiB on Linux


def create_app(
    uploads_dir: str | os.PathLike[str],
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    spool_dir: str | os.PathLike[str] | None = None,
    upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    fsync: bool = False,
) -> Starlette:
    """The upload app: ``POST /uploads`` stores a body, ``GET /stats`` reports.

    ``spool_dir`` (default: ``.spool`` in ``uploads_dir``) is where bodies past
    the memory limits are spooled; it must be on the file system of
    ``uploads_dir``, so that keeping an upload is a link, not a copy.  The
    directories are created if missing.
    """
    uploads = os.path.abspath(uploads_dir)
    spool = os.path.abspath(spool_dir if spool_dir is not None else f"{uploads}/.spool")
    os.makedirs(uploads, exist_ok=True)
    os.makedirs(spool, exist_ok=True)
    store = UploadStore(
        uploads_dir=uploads,
        spool_dir=spool,
        budget=atf.SpoolBudget(budget_bytes),
        max_size=max_size,
        upload_limit=upload_limit,
        fsync=fsync,
    )

    async def upload(request: Request) -> JSONResponse:
        digest = hashlib.sha256()
        size = 0
        async with atf.SpooledTemporaryFile(
            store.max_size, dir=store.spool_dir, budget=store.budget
        ) as spooled:
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > store.upload_limit:
                        # Leaving the block discards what was received.
                        return JSONResponse(
                            {"error": f"body larger than {store.upload_limit} bytes"},
                            status_code=413,
                        )
                    digest.update(chunk)
                    await spooled.write(chunk)
            except ClientDisconnect:
                # Nobody to answer; leaving the block discards the partial body.
                return JSONResponse({"error": "client disconnected"}, status_code=400)
            sha256 = digest.hexdigest()
            rolled = spooled.rolled  # persist() puts an in-memory file on disk
            before = None
            if rolled:
                fd = await spooled.fileno()
                before = (await anyio.to_thread.run_sync(os.fstat, fd)).st_ino
            dest = os.path.join(store.uploads_dir, sha256)
            try:
                await spooled.persist(dest, overwrite=False, fsync=store.fsync)
            except FileExistsError:
                duplicate = True  # same hash: the content is already stored
            else:
                duplicate = False
        kept_by: KeptBy | None = None
        if not duplicate:
            kept_by = "write"
            if rolled:
                after = (await anyio.Path(dest).stat()).st_ino
                kept_by = "link" if after == before else "copy"
        return JSONResponse(
            {
                "name": sha256,
                "sha256": sha256,
                "size": size,
                "rolled": rolled,
                "kept_by": kept_by,
                "duplicate": duplicate,
            }
        )

    async def stats(request: Request) -> JSONResponse:
        budget = store.budget
        return JSONResponse(
            {
                "budget": {
                    "in_use": budget.in_use,
                    "peak": budget.peak,
                    "max_bytes": budget.max_bytes,
                },
                "max_size": store.max_size,
                "peak_rss_bytes": peak_rss_bytes(),
            }
        )

    app = Starlette(
        routes=[
            Route("/uploads", upload, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
        ]
    )
    app.state.store = store
    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound and listening: connections queue until uvicorn accepts."""
    sock = socket.create_server((host, port), reuse_port=False)
    sock.set_inheritable(False)
    return sock


def main() -> None:
    env = os.environ
    app = create_app(
        env.get("UPLOADS_DIR", "uploads"),
        int(env.get("UPLOAD_BUDGET_BYTES", DEFAULT_BUDGET_BYTES)),
        max_size=int(env.get("UPLOAD_MAX_SIZE", DEFAULT_MAX_SIZE)),
        spool_dir=env.get("SPOOL_DIR"),
        upload_limit=int(env.get("UPLOAD_LIMIT_BYTES", DEFAULT_UPLOAD_LIMIT)),
        fsync=env.get("UPLOAD_FSYNC", "") not in ("", "0"),
    )
    # Bind first, so that PORT=0 gets a free port we can announce.
    sock = listening_socket("127.0.0.1", int(env.get("PORT", "8000")))
    host, port = sock.getsockname()[:2]
    store: UploadStore = app.state.store
    print(f"upload server on http://{host}:{port} (uploads in {store.uploads_dir})")
    sys.stdout.flush()
    config = uvicorn.Config(app, lifespan="off", log_level=env.get("LOG_LEVEL", "info"))
    # After a graceful shutdown uvicorn re-raises the SIGINT (Ctrl-C) it caught.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
