"""The everyday API on plain asyncio: ``python examples/everyday_asyncio.py``.

Each step prints what it shows and checks it, so the script fails loudly if the
library misbehaves.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import anyio

import anyio_tempfile as atf


async def main() -> None:
    # An unnamed scratch file: no directory entry, gone once closed.
    async with atf.TemporaryFile() as scratch:
        await scratch.write(b"hello, scratch space\n")
        await scratch.seek(0)
        assert await scratch.read() == b"hello, scratch space\n"
        print(f"TemporaryFile: descriptor {scratch.name}, read back ok")

    # A named file other code can open by name, kept with persist().
    async with atf.TemporaryDirectory(prefix="everyday-") as workdir:
        async with atf.NamedTemporaryFile("w+", dir=workdir, suffix=".txt") as report:
            await report.write("line one\nline two\n")
            await report.flush()
            # After flush() the data is visible to anyone who opens the name.
            text = await anyio.Path(report.name).read_text()
            assert text == "line one\nline two\n"
            kept = await report.persist(os.path.join(workdir, "report.txt"))
        assert [entry.name async for entry in anyio.Path(workdir).iterdir()] == [
            "report.txt"
        ]
        print(f"NamedTemporaryFile: persisted as {os.path.basename(kept)}")

        # A spooled buffer: in memory until it passes max_size, then on disk.
        async with atf.SpooledTemporaryFile(max_size=64 * 1024) as upload:
            sent = hashlib.sha256()
            for count in range(16):
                chunk = os.urandom(8 * 1024)
                sent.update(chunk)
                await upload.write(chunk)
                # 8 writes of 8 KiB reach max_size exactly: still in memory.
                assert upload.rolled == (count >= 8)
            await upload.seek(0)
            received = hashlib.sha256(await upload.read())
            assert received.digest() == sent.digest()
        print("SpooledTemporaryFile: rolled over to disk past 64 KiB, bytes intact")
    assert not await anyio.Path(workdir).exists()
    print("TemporaryDirectory: removed with everything in it")


if __name__ == "__main__":
    asyncio.run(main())
