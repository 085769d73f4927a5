"""What a temporary file deletes, and when: on close, at block exit, or never.

Modelled on the standard library's ``_TemporaryFileCloser``: *how to read and
write* is the storage's business, *what to delete and when* is this small class's.
Its methods block; the file object calls them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
from typing import IO, Any


class Closer:
    """Closes one on-disk temporary file and deletes it per its delete semantics.

    ``delete`` and ``delete_on_close`` mean what they mean for
    ``NamedTemporaryFile`` on Python 3.12+: removed on close; removed at the end of
    the ``async with`` block (surviving ``aclose()``); or never.  An unnamed file
    (``path is None``) has nothing to delete: closing it is enough.
    """

    __slots__ = (
        "cleanup_called",
        "close_called",
        "delete",
        "delete_on_close",
        "file",
        "linkable",
        "path",
    )

    def __init__(
        self,
        file: IO[Any],
        path: str | bytes | None,
        *,
        delete: bool = True,
        delete_on_close: bool = True,
        linkable: bool = False,
    ) -> None:
        self.file = file
        self.path = path
        # An unnamed O_TMPFILE file can be linked to a name (see _keep).
        self.linkable = linkable
        self.delete = delete and path is not None
        self.delete_on_close = delete_on_close
        self.close_called = False
        self.cleanup_called = False

    def has_work(self, *, at_exit: bool) -> bool:
        """Whether :meth:`close` (``at_exit``: :meth:`cleanup`) has work to do."""
        if at_exit:
            return not self.cleanup_called and (self.delete or not self.close_called)
        return not self.close_called

    def close(self) -> None:
        """Close the file; delete it too if it is deleted on close."""
        if self.close_called:
            return
        self.close_called = True
        try:
            self.file.close()
        finally:
            if self.delete and self.delete_on_close:
                self.cleanup()

    def cleanup(self) -> None:
        """Close the file if still open, and delete it unless it is kept."""
        if self.cleanup_called:
            return
        self.cleanup_called = True
        try:
            if not self.close_called:
                self.close_called = True
                self.file.close()
        finally:
            if self.delete and self.path is not None:
                with contextlib.suppress(FileNotFoundError):  # already gone: fine
                    os.unlink(self.path)

    def linked(self) -> None:
        """The unnamed file has been linked to a name: never link it again."""
        self.linkable = False

    def keep(self, path: str | bytes) -> None:
        """The file now lives at ``path`` for good: never delete it."""
        self.path = path
        self.delete = False
