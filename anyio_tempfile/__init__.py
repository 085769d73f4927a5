"""The standard library's ``tempfile`` module, async, for every AnyIO backend.

Every blocking system call runs in a worker thread (``anyio.to_thread``), so the
event loop is never blocked; creation, closing and cleanup are safe under
cancellation, AnyIO's and asyncio's native alike.  See the README for a tour.
"""

from ._atomic import atomic_write
from ._budget import SpoolBudget
from ._directory import TemporaryDirectory, mkdtemp
from ._names import gettempdir, gettempdirb, gettempprefix, gettempprefixb
from ._temporary import NamedTemporaryFile, SpooledTemporaryFile, TemporaryFile, mkstemp

__all__ = [
    "NamedTemporaryFile",
    "SpoolBudget",
    "SpooledTemporaryFile",
    "TemporaryDirectory",
    "TemporaryFile",
    "atomic_write",
    "gettempdir",
    "gettempdirb",
    "gettempprefix",
    "gettempprefixb",
    "mkdtemp",
    "mkstemp",
]
