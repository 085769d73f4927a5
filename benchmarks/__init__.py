"""Benchmarks: the same workloads through four temp-file implementations.

``python -m benchmarks`` (or ``nox -s bench``) runs every workload through the
standard library's ``tempfile`` called on the loop, AnyIO's own temp files,
``aiofiles.tempfile`` and ``anyio_tempfile``, on asyncio, uvloop and trio,
interleaved and repeated, and reports medians, ratios and event-loop lateness.
See ``benchmarks/README.md``.

* :mod:`.harness` -- backends, timing, the lateness ticker, the interleaved rounds
* :mod:`.implementations` -- one small adapter per implementation
* :mod:`.workloads` -- the registry of workloads, each checking its own data
* :mod:`.report` -- the machine header, the tables, the JSON file
"""
