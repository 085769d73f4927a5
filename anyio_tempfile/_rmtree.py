"""Remove a directory tree without following a symlink or touching anything outside it.

``TemporaryDirectory.cleanup()`` runs :func:`rmtree` in a worker thread, so this is
plain blocking code. It works like the descriptor-based walk of ``shutil.rmtree``
(every name is resolved relative to a descriptor of its directory, with
``O_NOFOLLOW``), and differs from the standard library where the temporary directory
needs it to:

* Read-only entries are removed too, and their permissions are fixed only through a
  descriptor opened with ``O_NOFOLLOW | O_DIRECTORY``: the inode changed is the one we
  opened, a directory inside the tree, never a symlink's target. ``tempfile`` used to
  chmod by path and followed a symlink out of the tree (CVE-2023-6597, gh-91133); its
  fix checks ``islink()`` and then chmods by path, which leaves a window in which the
  entry can be swapped for a symlink, and its retries after a permission error
  resolve full paths again, with the same window. Here every entry is reached
  through a descriptor of its directory, and every mode change goes through a
  descriptor of the directory changed.
* However deep the tree, no recursion, and at most four descriptors at a time:
  ``shutil`` holds one per level, so a tree deeper than the descriptor limit cannot be
  removed, and a deep one can starve the rest of the process.
* A ``path`` that is a symlink is unlinked, not refused (see
  ``_Removal.remove_top_non_directory``).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass, field
from typing import TypeAlias

_Path: TypeAlias = str | bytes

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OWNER_ONLY = 0o700

# What open(O_NOFOLLOW | O_DIRECTORY) reports for a symlink or another non-directory:
# ENOTDIR on Linux, ELOOP on macOS, EMLINK on FreeBSD.
_NOT_A_DIRECTORY = frozenset({errno.ENOTDIR, errno.ELOOP, errno.EMLINK})


def rmtree(path: str | bytes, *, ignore_errors: bool = False) -> None:
    """Remove the directory ``path`` and everything in it, following no symlink.

    A ``path`` that does not exist, and entries that vanish while we work, are no
    error. Any other error is raised at once (an :class:`OSError` whose ``filename``
    is the entry's full path, like ``shutil.rmtree``), unless ``ignore_errors``: then
    everything that can be removed is.
    """
    _Removal(_without_trailing_slashes(path), ignore_errors).run()


@dataclass
class _Directory:
    """A directory we are inside of, and what is left to do in it."""

    name: str  # its name in its parent ("" for the top)
    path: _Path  # only for error messages: names are always resolved by descriptor
    identity: tuple[int, int]  # (st_dev, st_ino), to recognise it when we come back
    subdirectories: list[str] = field(default_factory=list[str])


class _Removal:
    def __init__(self, top: _Path, ignore_errors: bool) -> None:
        self.top = top
        self.ignore_errors = ignore_errors

    def failed(self, error: OSError, path: _Path) -> None:
        """Raise ``error`` for ``path``, unless it vanished or we ignore errors."""
        if isinstance(error, FileNotFoundError):
            return
        error.filename = path
        if not self.ignore_errors:
            raise error

    def run(self) -> None:
        try:
            top_fd = _open_directory(None, self.top)
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno in _NOT_A_DIRECTORY:
                self.remove_top_non_directory(error)
            else:
                self.failed(error, self.top)
            return
        try:
            self.remove_contents(top_fd)
        finally:
            os.close(top_fd)
        self.remove(None, self.top, self.top, is_directory=True)

    def remove_top_non_directory(self, error: OSError) -> None:
        try:
            is_symlink = stat.S_ISLNK(os.lstat(self.top).st_mode)
        except OSError as lstat_error:
            self.failed(lstat_error, self.top)
            return
        if is_symlink:
            # shutil.rmtree refuses a symlink. For a temporary directory whose name
            # was replaced by a symlink, the name is ours and the target is not:
            # unlinking the symlink (which never follows it) removes what we created
            # and leaves the target alone, whatever it is.
            self.remove(None, self.top, self.top, is_directory=False)
        else:
            # A file or the like: not what we were asked to remove, as in shutil.
            self.failed(error, self.top)

    def remove_contents(self, top_fd: int) -> None:
        # Depth first, with an explicit stack of _Directory, holding a descriptor only
        # for the directory we are in (plus the top's): we go back up through "..",
        # and compare it with the directory we came from, so that a directory moved
        # out of the tree while we were inside cannot take us out of the tree.
        current_fd = os.dup(top_fd)
        try:
            stack = [self.scan(current_fd, "", self.top)]
            while stack:
                directory = stack[-1]
                if directory.subdirectories:
                    name = directory.subdirectories.pop()
                    path = _join(directory.path, name)
                    child_fd = self.open_subdirectory(current_fd, name, path)
                    if child_fd is not None:
                        os.close(current_fd)
                        current_fd = child_fd
                        stack.append(self.scan(current_fd, name, path))
                    continue
                stack.pop()
                if not stack:
                    return
                parent = stack[-1]
                current_fd = self.ascend(top_fd, current_fd, stack)
                # If the parent itself moved away, the finished directory went with
                # it: its name in the directory we are in now is someone else's.
                if stack[-1] is parent:
                    self.remove(
                        current_fd, directory.name, directory.path, is_directory=True
                    )
        finally:
            os.close(current_fd)

    def scan(self, fd: int, name: str, path: _Path) -> _Directory:
        """Unlink everything but subdirectories in ``fd``; list those for later."""
        directory = _Directory(name, path, _identity(fd))
        try:
            with os.scandir(fd) as scanner:
                entries = list(scanner)
        except OSError as error:
            self.failed(error, path)
            return directory
        for entry in entries:
            try:
                is_directory = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_directory = False  # the unlink below says what went wrong
            if is_directory:
                directory.subdirectories.append(entry.name)
            else:
                self.remove(fd, entry.name, _join(path, entry.name), is_directory=False)
        return directory

    def open_subdirectory(self, parent_fd: int, name: str, path: _Path) -> int | None:
        try:
            return _open_directory(parent_fd, name)
        except OSError as error:
            if error.errno in _NOT_A_DIRECTORY:
                # Replaced by a symlink or a file since we listed it: O_NOFOLLOW
                # kept us from following it; remove the name like any other entry.
                self.remove(parent_fd, name, path, is_directory=False)
            else:
                self.failed(error, path)
            return None

    def ascend(self, top_fd: int, child_fd: int, stack: list[_Directory]) -> int:
        """Close ``child_fd``; return a descriptor for the directory ``stack[-1]``."""
        try:
            parent_fd = os.open("..", _DIRECTORY_FLAGS, dir_fd=child_fd)
        except OSError:  # "..", too, needs search permission: mode 0o400, say
            parent_fd = None
        if parent_fd is not None and _identity(parent_fd) != stack[-1].identity:
            os.close(parent_fd)
            parent_fd = None
        if parent_fd is None:
            parent_fd = _reenter(top_fd, stack)
        os.close(child_fd)
        return parent_fd

    def remove(
        self, dir_fd: int | None, name: _Path, path: _Path, *, is_directory: bool
    ) -> None:
        """Remove ``name`` in ``dir_fd``, making ``dir_fd`` writable if need be."""
        remove = os.rmdir if is_directory else os.unlink
        try:
            remove(name, dir_fd=dir_fd)
            return
        except PermissionError as error:
            # The directory holding the entry may be read-only (mode 0o500, say).
            # Never the parent of the top: that one is outside the tree.
            if dir_fd is None or not _make_owner_only(dir_fd):
                self.failed(error, path)
                return
        except OSError as error:
            self.failed(error, path)
            return
        try:
            remove(name, dir_fd=dir_fd)
        except OSError as error:
            self.failed(error, path)


def _open_directory(parent_fd: int | None, name: _Path) -> int:
    """Open the directory ``name`` in ``parent_fd`` for reading, never following a
    symlink, and making it (and ``parent_fd``) accessible to us if they are not.
    ``parent_fd`` None means ``name`` is the top: its parent is not ours to change.
    """
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent_fd)
    except PermissionError as error:
        first_error = error
    # Either the parent is not searchable (mode 0o600, say): fix it through the
    # descriptor we hold, which works everywhere; or the directory is not readable
    # (mode 0o000, say): then only Linux has a race-free way, below.
    if parent_fd is not None and _make_owner_only(parent_fd):
        try:
            return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent_fd)
        except PermissionError:
            pass
    if sys.platform != "linux":
        raise first_error
    # An O_PATH descriptor needs no permission on the directory itself and pins the
    # very inode (O_NOFOLLOW: not a symlink's target; O_DIRECTORY: not a symlink).
    # fchmod() refuses O_PATH descriptors, but /proc/self/fd/N reaches that inode and
    # no other, and opening it again gives a readable descriptor for that same inode.
    path_fd = os.open(
        name,
        os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
        dir_fd=parent_fd,
    )
    try:
        proc_path = f"/proc/self/fd/{path_fd}"
        os.chmod(proc_path, _OWNER_ONLY)
        return os.open(proc_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        # No /proc (a chroot), or not our directory: report what actually stopped us,
        # and not a FileNotFoundError for /proc that would pass for a vanished entry.
        raise first_error from None
    finally:
        os.close(path_fd)


def _reenter(top_fd: int, stack: list[_Directory]) -> int:
    """Open the deepest directory of ``stack`` still in the tree, walking down from
    the top; drop from ``stack`` the directories that are not (moved away: for us
    they vanished, as for shutil, which would go on by descriptor).
    """
    fd = os.dup(top_fd)
    for depth in range(1, len(stack)):
        try:
            child_fd = os.open(stack[depth].name, _DIRECTORY_FLAGS, dir_fd=fd)
        except OSError:
            del stack[depth:]
            break
        if _identity(child_fd) != stack[depth].identity:
            os.close(child_fd)
            del stack[depth:]
            break
        os.close(fd)
        fd = child_fd
    return fd


def _make_owner_only(fd: int) -> bool:
    """Give the directory ``fd`` mode 0o700; False if we may not."""
    # A descriptor opened with O_NOFOLLOW | O_DIRECTORY: this is a directory in the
    # tree, whatever has happened to its name since.
    try:
        os.fchmod(fd, _OWNER_ONLY)
    except OSError:
        return False
    return True


def _identity(fd: int) -> tuple[int, int]:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def _without_trailing_slashes(path: _Path) -> _Path:
    # "link/" makes the kernel follow the symlink "link" even with O_NOFOLLOW: the
    # target would pass for the top directory, and its contents would go.
    if isinstance(path, bytes):
        return path.rstrip(b"/") or path
    return path.rstrip("/") or path


def _join(directory: _Path, name: str) -> _Path:
    # os.scandir(fd) gives str names; a bytes tree gets bytes paths in its errors.
    if isinstance(directory, bytes):
        return os.path.join(directory, os.fsencode(name))
    return os.path.join(directory, name)
