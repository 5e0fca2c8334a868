"""Atomic file replacement: the one scheme of temporaries every writer uses.

A writer puts its data in ``.<name>.partial-<pid>`` (variants: ``.<name>.partial-<pid>.<suffix>`` for
intermediate files, ``.<name>.old-<pid>`` for an output moved aside while its replacement is renamed into
place) next to the final path, and renames it into place when complete, so a reader never sees a half
written file. Before the rename the data are flushed to the disk (:func:`sync_path`), and after it the
directory entry (:func:`sync_directory`): file systems may otherwise store the rename before the data,
and after a power cut a complete-looking file could hold zeros. A writer killed with SIGKILL or by a power
cut cannot clean up and the next run has another pid: :func:`remove_stale_temporaries` deletes what dead
processes left behind and keeps what live ones are still writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "NEARLY_FULL_BYTES",
    "DiskFullError",
    "LockHeld",
    "atomic_write_bytes",
    "atomic_write_text",
    "disk_full_error",
    "exclusive_lock",
    "free_bytes",
    "lock_path",
    "old_path",
    "partial_path",
    "pid_alive",
    "remove_path",
    "remove_stale_temporaries",
    "replace_durably",
    "sync_directory",
    "sync_path",
]


def partial_path(path: Path, suffix: str = "") -> Path:
    """The temporary ``path`` is written to before it is renamed into place (``suffix`` for variants)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}{suffix}")


def old_path(path: Path) -> Path:
    """Where an existing output is moved aside while its replacement is renamed into place."""
    return path.with_name(f".{path.name}.old-{os.getpid()}")


def sync_path(path: Path) -> None:
    """Flush a written file, or every file of a directory tree (a Zarr store), to the disk."""
    if path.is_dir() and not path.is_symlink():
        for root, _, files in os.walk(path):
            for name in files:
                _fsync(Path(root) / name, os.O_RDONLY)
            sync_directory(Path(root))
    else:
        _fsync(path, os.O_RDONLY)


def sync_directory(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to the disk, where the system allows it."""
    if hasattr(os, "O_DIRECTORY"):  # POSIX; elsewhere a directory cannot be opened to be synced
        _fsync(path, os.O_RDONLY | os.O_DIRECTORY)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # file systems that cannot sync (some pipes, FUSE)
            raise
    finally:
        os.close(fd)


def replace_durably(tmp: Path, path: Path) -> None:
    """Rename the finished temporary ``tmp`` to ``path``: its data on the disk first, then the rename."""
    sync_path(tmp)
    os.replace(tmp, path)
    sync_directory(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary and a rename: ``path`` is never half written."""
    tmp = partial_path(path)
    try:
        tmp.write_bytes(data)
        replace_durably(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_path(path: Path) -> None:
    """Remove a file, a link or a directory tree if it exists (a link is removed, never its target)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (another user's live process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries of ``path`` left by writers that are no longer running; returns them.

    Without this each kill would leave a file as large as the output behind. Temporaries of live
    processes, and of this process, are kept.
    """
    p = Path(path).expanduser()
    removed: list[Path] = []
    if not p.parent.is_dir():
        return removed
    pattern = re.compile(rf"^\.{re.escape(p.name)}\.(?:partial|old)-(\d+)(?:\..*)?$")
    for q in p.parent.iterdir():
        m = pattern.match(q.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            remove_path(q)
            removed.append(q)
    return removed


class LockHeld(RuntimeError):
    """Another live process holds the lock: ``pid`` is its process id when it could be read."""

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"{path} is locked by process {pid if pid is not None else '(unknown)'}")
        self.path, self.pid = path, pid


def lock_path(path: Path) -> Path:
    """The lock file of an output ``path``: ``.<name>.lock`` next to it."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on the file ``path`` (created if missing, removed at the end).

    The operating system releases the lock when the holder dies, however it dies (SIGKILL, power cut),
    so a killed run never leaves a lock behind that blocks the next one. Between opening the file and
    locking it, the previous holder may have removed it; the lock is then taken again on the new file.

    Raises
    ------
    LockHeld
        Another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: run unlocked
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder: int | None = int(os.read(fd, 32).decode().strip() or "x")
            except ValueError:
                holder = None
            os.close(fd)
            raise LockHeld(path, holder) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        # Removed while still locked, so a process that opened it meanwhile sees another inode and retries.
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)


def free_bytes(path: Path) -> int | None:
    """Bytes available to this user on the file system holding ``path`` (``None`` when unknown)."""
    try:
        st = os.statvfs(path if path.is_dir() else path.parent)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


#: Below this many free bytes a file system counts as full: writers stop with a few blocks' room left.
NEARLY_FULL_BYTES = 16 * 2**20


class DiskFullError(OSError):
    """A write failed because its file system is full; the message says what and how much is free."""


def disk_full_error(where: Path, what: str, *, then: str) -> DiskFullError:
    """The one message of a full disk: ``what`` could not be written on the file system of ``where``.

    ``then`` says what became of the user's data (e.g. "the output was not put in place").
    """
    free = free_bytes(where)
    return DiskFullError(
        errno.ENOSPC,
        f"No space left on device while writing {what}: the disk is full ({free} bytes free on its file "
        f"system); {then}",
    )
