"""The everyday API on trio: ``python examples/everyday_trio.py``.

The same calls as on asyncio, run by ``trio.run`` and cancelled by trio's own
cancel scopes.  It shows a text-mode ``TemporaryFile`` read line by line, a
``NamedTemporaryFile`` kept with ``persist()``, spooled files of a nursery's
tasks sharing one ``SpoolBudget``, ``atomic_write`` replacing a file (and, when
cancelled, leaving it alone), and ``TemporaryDirectory``.  Each step prints
what it shows and checks it, so the script fails loudly if the library
misbehaves.
"""

from __future__ import annotations

import hashlib
import os

import trio

import anyio_tempfile as atf

KiB = 1024


async def text_scratch() -> None:
    # A str file (TemporaryFile("w+") is AsyncTemporaryFile[str]), read by lines.
    async with atf.TemporaryFile("w+", encoding="utf-8") as notes:
        await notes.writelines(["première ligne\n", "second line\n"])
        await notes.seek(0)
        lines = [line async for line in notes]
        assert lines == ["première ligne\n", "second line\n"], lines
    assert notes.closed
    print(f"TemporaryFile: {len(lines)} text lines read back with async for")


async def keep_a_report(workdir: str) -> None:
    async with atf.NamedTemporaryFile(dir=workdir, suffix=".part") as part:
        await part.write(b"total: 42\n")
        kept = await part.persist(os.path.join(workdir, "report.txt"))
    # Closing after persist() deletes nothing: the data lives on under its name.
    assert await trio.Path(kept).read_bytes() == b"total: 42\n"
    assert sorted(os.listdir(workdir)) == ["report.txt"]
    print(f"NamedTemporaryFile: persisted as {os.path.basename(kept)}")


async def shared_budget() -> None:
    # Four tasks spool 48 KiB each, all at once, sharing a 128 KiB budget: at
    # most two files fit in memory together, so at least two roll to disk,
    # although no file reaches its own 64 KiB max_size.
    budget = atf.SpoolBudget(128 * KiB)
    all_written = trio.Event()
    written = 0
    rolled: list[bool] = []

    async def spool(index: int) -> None:
        nonlocal written
        expected = hashlib.sha256()
        async with atf.SpooledTemporaryFile(64 * KiB, budget=budget) as buffer:
            for _ in range(3):
                chunk = os.urandom(16 * KiB)
                expected.update(chunk)
                await buffer.write(chunk)
            written += 1
            if written == 4:
                all_written.set()
            await all_written.wait()  # hold the memory until all have written
            rolled.append(buffer.rolled)
            await buffer.seek(0)
            assert hashlib.sha256(await buffer.read()).digest() == expected.digest()

    async with trio.open_nursery() as nursery:
        for index in range(4):
            nursery.start_soon(spool, index)
    assert rolled.count(True) >= 2, rolled
    assert budget.peak <= budget.max_bytes, budget
    assert budget.in_use == 0, budget  # every file gave its memory back
    print(
        f"SpoolBudget: {rolled.count(True)} of 4 files rolled to disk by the "
        f"shared budget, peak {budget.peak // KiB} KiB of {budget.max_bytes // KiB} KiB"
    )


async def replace_a_config(workdir: str) -> None:
    config = os.path.join(workdir, "settings.ini")
    async with atf.atomic_write(config, "w", encoding="utf-8") as out:
        await out.write("[server]\nport = 8000\n")
    assert await trio.Path(config).read_text() == "[server]\nport = 8000\n"

    # Cancelled half-way: the old content stays, and no temporary name is left.
    with trio.move_on_after(0.01) as scope:
        async with atf.atomic_write(config, "w", encoding="utf-8") as out:
            await out.write("[server]\nport = ")
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert await trio.Path(config).read_text() == "[server]\nport = 8000\n"
    assert sorted(os.listdir(workdir)) == ["report.txt", "settings.ini"]
    print("atomic_write: file replaced whole; a cancelled write left it untouched")


async def main() -> None:
    await text_scratch()
    async with atf.TemporaryDirectory(prefix="everyday-trio-") as workdir:
        await keep_a_report(workdir)
        await shared_budget()
        await replace_a_config(workdir)
    assert not await trio.Path(workdir).exists()
    print("TemporaryDirectory: removed with everything in it")


if __name__ == "__main__":
    trio.run(main)
