"""``python -m benchmarks [--quick] [--json PATH] ...``: run, print, save."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from . import harness, report
from .implementations import IMPLEMENTATIONS
from .workloads import WORKLOADS, VerificationError, build


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time the same temp-file workloads through stdlib, anyio, "
        "aiofiles and anyio_tempfile, interleaved, on asyncio, uvloop and trio.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, one round: a smoke run (what CI runs)",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds to run (default: 5, or 1 with --quick)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=report.DEFAULT_JSON,
        metavar="PATH",
        help="where to write the results (default: .bench/results.json)",
    )
    parser.add_argument(
        "--dir",
        default=tempfile.gettempdir(),
        help="where the temporary files go (default: %(default)s)",
    )
    parser.add_argument(
        "--backend",
        action="append",
        choices=[b.name for b in harness.BACKENDS],
        help="only this backend (repeatable)",
    )
    parser.add_argument(
        "--impl",
        action="append",
        choices=[i.name for i in IMPLEMENTATIONS],
        help="only this implementation (repeatable)",
    )
    parser.add_argument(
        "--workload",
        action="append",
        choices=[w.key for w in WORKLOADS],
        help="only this workload (repeatable)",
    )
    return parser


def _verification_error(error: BaseException) -> VerificationError | None:
    """The VerificationError inside ``error``, task groups' wrapping included."""
    if isinstance(error, VerificationError):
        return error
    for inner in getattr(error, "exceptions", ()):
        if found := _verification_error(inner):
            return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    if rounds < 1:
        sys.exit("--rounds must be at least 1")

    backends = []
    for backend in harness.BACKENDS:
        if args.backend and backend.name not in args.backend:
            continue
        if why := backend.available():
            print(f"skipping {backend.name}: {why}", file=sys.stderr)
            continue
        backends.append(backend)
    implementations = [
        i for i in IMPLEMENTATIONS if not args.impl or i.name in args.impl
    ]
    plan = harness.Plan(
        backends=backends,
        workloads=build(quick=args.quick, keys=set(args.workload or ()) or None),
        implementations=implementations,
        rounds=rounds,
        where=args.dir,
    )

    info = report.machine(args.dir)
    print(report.header(info, plan, args.quick), flush=True)
    print(file=sys.stderr)
    started, start = datetime.now(), time.perf_counter()
    try:
        results = harness.run(plan)
    except BaseException as error:
        if wrong := _verification_error(error):
            print(f"\nFAILED verification: {wrong}", file=sys.stderr)
            return 1
        raise
    elapsed = time.perf_counter() - start

    summary = report.summarise(results)
    for backend in plan.backends:
        print()
        print(
            report.table(
                backend.name,
                summary.get(backend.name, {}),
                plan.workloads,
                [i for i in implementations if backend.anyio_backend in i.backends],
                results.idle.get(backend.name, []),
            )
        )
    print()
    print(report.ours_versus(summary, plan.workloads, [b.name for b in backends]))
    print()
    print(report.LEGEND)
    report.to_json(
        args.json,
        info=info,
        plan=plan,
        quick=args.quick,
        results=results,
        started=started,
        elapsed=elapsed,
    )
    print(f"\nran in {elapsed:.1f} s; results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
