"""Giving a temporary file its final name: ``persist``.

The only module that names a file for good.  Plain blocking functions, run in a
worker thread.

* A named file is renamed; without ``overwrite`` it is linked, then its old name
  unlinked, so that an existing destination is refused by ``link(2)`` itself
  rather than by a check that could race.
* An unnamed ``O_TMPFILE`` file is linked into place with ``linkat(2)`` through
  ``/proc/self/fd``: no byte is copied.  With ``overwrite`` it is linked under a
  fresh random name beside ``dest`` and renamed over it, the only moment a name
  appears.
* ``atomic_write`` writes to a linkable unnamed file in the destination's
  directory (a named one where ``O_TMPFILE`` is refused) and links or renames it
  into place only once the body succeeded: a failure, a cancellation or a killed
  process leaves no name behind (with the named fallback, a killed process
  leaves that file).
* An unnamed file that cannot be linked (``O_TMPFILE`` refused) is copied into a
  new named file beside ``dest``, which is renamed into place and then takes
  over the descriptor (``dup2``), so that the open object goes on reading and
  writing the kept file.  Only then is a copy made, and only then can a killed
  process leave the half-written copy behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from ._cleanup import Closer
from ._create import FileOptions, open_file, open_named
from ._names import NameParts, candidate_names


def rename_into_place(
    closer: Closer, dest: str | bytes, *, overwrite: bool, fsync: bool
) -> str | bytes:
    """Persist a named temporary file: rename (or link) it to ``dest``."""
    source = closer.path
    assert source is not None
    target = os.path.abspath(dest)
    file = closer.file
    file.flush()
    if fsync:
        os.fsync(file.fileno())
    if overwrite:
        os.rename(source, target)
    else:
        os.link(source, target, follow_symlinks=False)
        _unlink_old_name(source, target)
    closer.keep(target)
    _set_name(file, target)
    if fsync:
        fsync_directory(os.path.dirname(target))
    return target


def _unlink_old_name(
    source: str | bytes, target: str | bytes, *, dir_fd: int | None = None
) -> None:
    # The second half of every exclusive link-then-unlink (persist, the copy
    # fallback, atomic_write).  If the old name cannot go, the link is undone: a
    # failure leaves no name in dest's directory, and the file is still the
    # temporary file it was (deleted by its close).
    try:
        os.unlink(source, dir_fd=dir_fd)
    except FileNotFoundError:
        pass  # removed by someone else meanwhile: dest is all that is left
    except BaseException as error:
        try:
            os.unlink(target, dir_fd=dir_fd)
        except OSError as undo_error:
            if sys.version_info >= (3, 11):
                error.add_note(f"and {target!r} could not be removed: {undo_error}")
        raise


def link_into_place(
    closer: Closer, dest: str | bytes, *, overwrite: bool, fsync: bool
) -> str | bytes:
    """Persist an unnamed temporary file: give its data the name ``dest``."""
    target = os.path.abspath(dest)
    directory, base = os.path.split(target)
    file = closer.file
    file.flush()
    fd = file.fileno()
    if fsync:
        os.fsync(fd)
    directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if closer.linkable:
            _link_descriptor(
                fd, base, directory_fd, overwrite=overwrite, linked=closer.linked
            )
        else:
            _copy_and_take_over(file, directory, base, directory_fd, overwrite, fsync)
        # The data has the name dest from now on, even if the directory's fsync
        # fails: a retry, or a later persist elsewhere, renames it as it would a
        # named file (linking it again would leave two names).
        closer.keep(target)
        if fsync:
            os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
    return target


def _link_descriptor(
    fd: int,
    base: str | bytes,
    directory_fd: int,
    *,
    overwrite: bool,
    linked: Callable[[], None] = lambda: None,
) -> None:
    # An unprivileged process links an O_TMPFILE file through /proc's magic
    # link; that needs AT_SYMLINK_FOLLOW (follow_symlinks) and a dst_dir_fd,
    # without which os.link calls link(2), which fails with EXDEV.
    source = f"/proc/self/fd/{fd}"
    if not overwrite:
        os.link(source, base, dst_dir_fd=directory_fd, follow_symlinks=True)
        linked()
        return
    staging = _link_under_fresh_name(source, base, directory_fd)
    # Once linked, an O_TMPFILE inode whose names all go can never be linked
    # again (linkat(2) says ENOENT): if the rename fails, the caller must copy.
    linked()
    try:
        os.rename(staging, base, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
    except BaseException:
        os.unlink(staging, dir_fd=directory_fd)
        raise


def _link_under_fresh_name(
    source: str, base: str | bytes, directory_fd: int
) -> str | bytes:
    for name in candidate_names():
        staging = os.fsencode(name) if isinstance(base, bytes) else name
        try:
            os.link(source, staging, dst_dir_fd=directory_fd, follow_symlinks=True)
        except FileExistsError:
            continue
        return staging
    raise FileExistsError("no usable temporary name found")  # pragma: no cover


def _copy_and_take_over(
    file: IO[Any],
    directory: str | bytes,
    base: str | bytes,
    directory_fd: int,
    overwrite: bool,
    fsync: bool,
) -> None:
    fd = file.fileno()
    # The same promise as a link: one file system, or EXDEV (a copy could
    # cross, but then persist would not be the atomic rename it says it is).
    if os.fstat(fd).st_dev != os.fstat(directory_fd).st_dev:
        raise OSError(
            errno.EXDEV,
            os.strerror(errno.EXDEV),
            os.path.join(os.fsdecode(directory), os.fsdecode(base)),
        )
    parts = NameParts(prefix=".tmp", suffix="", dir=os.fsdecode(directory))
    copy_fd, copy_path = open_named(os.fsdecode(directory), parts)
    try:
        _copy_all(fd, copy_fd)
        if fsync:
            os.fsync(copy_fd)  # the copy is what takes the name
        copy_name = os.path.basename(os.fsdecode(copy_path))
        target = os.fsdecode(base)
        if overwrite:
            os.rename(
                copy_name, target, src_dir_fd=directory_fd, dst_dir_fd=directory_fd
            )
        else:
            os.link(copy_name, target, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
            _unlink_old_name(copy_name, target, dir_fd=directory_fd)
    except BaseException:
        os.close(copy_fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(copy_path)
        raise
    # The kept copy takes over the file object's descriptor number, at the same
    # position: from now on its reads and writes act on the kept file.
    try:
        os.lseek(copy_fd, os.lseek(fd, 0, os.SEEK_CUR), os.SEEK_SET)
        os.dup2(copy_fd, fd, inheritable=False)
    finally:
        os.close(copy_fd)


def _copy_all(source_fd: int, dest_fd: int) -> None:
    # Offsets are explicit, so the source's own position is left alone.
    offset = 0
    size = os.fstat(source_fd).st_size
    while offset < size:
        sent = os.sendfile(dest_fd, source_fd, offset, size - offset)
        if sent == 0:
            break
        offset += sent


def _set_name(file: IO[Any], name: str | bytes) -> None:
    raw: Any = getattr(file, "buffer", file)
    raw = getattr(raw, "raw", raw)
    # An unnamed file kept earlier is still known by its descriptor, as the
    # standard library's TemporaryFile is.
    if isinstance(raw.name, (str, bytes)):
        raw.name = name


def fsync_directory(path: str | bytes) -> None:
    """Make a rename or link in directory ``path`` durable."""
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class PendingWrite:
    """An ``atomic_write`` in progress: the file the body writes to.

    ``descriptor`` duplicates the file's own, so that the data can still be
    linked into place if the body closed the file.  ``path`` is the named
    fallback's path, ``None`` for an ``O_TMPFILE`` file.
    """

    file: IO[Any]
    target: str | bytes
    path: str | bytes | None
    descriptor: int


def open_for_atomic_write(
    dest: str | bytes, options: FileOptions, *, overwrite: bool
) -> PendingWrite:
    """Start an ``atomic_write`` of ``dest``: a temporary file beside it."""
    target = os.path.abspath(dest)
    directory = os.path.dirname(target)
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    mode = _mode_for(target)
    parts: NameParts[Any] = (
        NameParts(prefix=b".tmp", suffix=b"", dir=directory)
        if isinstance(directory, bytes)
        else NameParts(prefix=".tmp", suffix="", dir=directory)
    )
    opened = open_file(parts, options, "linkable")
    try:
        descriptor = os.dup(opened.file.fileno())
        try:
            os.fchmod(descriptor, mode)
        except BaseException:
            os.close(descriptor)
            raise
    except BaseException:
        opened.file.close()
        if opened.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(opened.path)
        raise
    return PendingWrite(opened.file, target, opened.path, descriptor)


def commit(pending: PendingWrite, *, overwrite: bool, fsync: bool) -> None:
    """Finish an ``atomic_write``: its data takes the name of the target.

    If it raises, the caller discards the pending write (as after a failed body).
    """
    target = pending.target
    try:
        if not pending.file.closed:
            pending.file.flush()
        if fsync:
            os.fsync(pending.descriptor)
        directory, base = os.path.split(target)
        directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if pending.path is None:
                _link_descriptor(
                    pending.descriptor, base, directory_fd, overwrite=overwrite
                )
            elif overwrite:
                os.rename(pending.path, target)
            else:
                os.link(pending.path, target, follow_symlinks=False)
                _unlink_old_name(pending.path, target)
            if fsync:
                os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
    except FileExistsError as exc:
        raise FileExistsError(
            errno.EEXIST,
            "the destination appeared while the data was being written; "
            "with overwrite=False it is left alone and the data written was "
            "discarded",
            target,
        ) from exc
    pending.path = None  # it has its final name now: nothing to remove
    _close_pending(pending)


def discard(pending: PendingWrite) -> None:
    """Abandon an ``atomic_write``: the destination is left as it was."""
    # The data is being thrown away: an error while flushing it does not matter.
    with contextlib.suppress(OSError):
        _close_pending(pending)
    if pending.path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pending.path)


def _close_pending(pending: PendingWrite) -> None:
    try:
        pending.file.close()
    finally:
        if pending.descriptor >= 0:
            descriptor, pending.descriptor = pending.descriptor, -1
            os.close(descriptor)


def _mode_for(target: str | bytes) -> int:
    # What open() would give: the replaced file's mode, else 0o666 less umask.
    try:
        status = os.lstat(target)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISREG(status.st_mode):
            return stat.S_IMODE(status.st_mode)
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux reports it without changing it; os.umask() can only read it by
    # setting it, which races with other threads creating files.
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
