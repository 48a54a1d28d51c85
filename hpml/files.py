"""Writing a file atomically (a temporary ``.<name>.<random>.tmp`` renamed onto it), the one helper every
hpml writer uses, and the one output-path policy: a symlink is followed, a character device such as
/dev/null written in place, a FIFO, socket or block device refused (it would hang or be destroyed)."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable

from hpml.errors import HpmlError

#: Permissions of a written file: ordinary data (mkstemp's own 0600 would make it private).
MODE = 0o644


class NotAnOutputFile(OSError):
    """The path names something hpml does not write to (a FIFO, socket, block device, directory)."""


def output_target(path: str | Path) -> tuple[Path, bool]:
    """``(the file to write, whether in place)`` for an output path; :class:`NotAnOutputFile` if refused."""
    real = Path(os.path.realpath(path))
    try:
        mode = os.stat(real).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a new file (its folder is the writer's to check)
        return real, False
    except OSError as exc:
        raise NotAnOutputFile(exc.errno, f"{path}: {exc.strerror}") from None
    if stat.S_ISREG(mode):
        return real, False
    if stat.S_ISCHR(mode):
        return real, True
    if stat.S_ISDIR(mode):
        raise NotAnOutputFile(errno.EISDIR, f"{path} is a directory; give a file name")
    kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "block device"
    raise NotAnOutputFile(errno.EINVAL, f"{path} is a {kind}; hpml writes regular files (or a character "
                          "device such as /dev/null)")


def atomic_write(path: str | Path, write: Callable[[Path], object], *, parents: bool = False,
                 mode: int = MODE) -> Path:
    """Call ``write(tmp)`` to fill a temporary file next to ``path``, then rename it onto ``path``; a missing
    folder is created with ``parents=True``, else an ``OSError`` for the caller (a mistyped ``--json``)."""
    path, in_place = output_target(path)
    if in_place:
        write(path)
        return path
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str, *, parents: bool = False) -> Path:
    """``text`` (UTF-8) into ``path``, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), parents=parents)


def write_bytes_atomic(path: str | Path, data: bytes, *, parents: bool = False) -> Path:
    """``data`` into ``path``, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), parents=parents)


def check_writable_dir(folder: str | Path, what: str) -> None:
    """Refuse, before a run starts, an output folder that cannot be created or written."""
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise HpmlError(f"{what} {folder} cannot be created: {existing} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hpml-write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise HpmlError(f"{what} {folder} is not writable: {os_error(exc)}") from None


def check_writable_file(path: str | Path, what: str, *, create: bool = True) -> None:
    """Refuse, before a run starts, an output file the policy refuses or whose folder is not writable
    (``create=False``: the folder must exist already)."""
    if not str(path):
        raise HpmlError(f"{what} is empty; give a file name")
    try:
        target, in_place = output_target(path)
    except NotAnOutputFile as exc:
        raise HpmlError(f"{what} {exc.strerror}") from None
    if in_place:  # a character device: written through, nothing to create
        if not os.access(target, os.W_OK):
            raise HpmlError(f"{what} {path} is not writable")
        return
    if not create and not target.parent.is_dir():
        raise HpmlError(f"{what} {path}: no folder {target.parent}")
    check_writable_dir(target.parent, f"{what} {path}: folder")


def os_error(exc: OSError) -> str:
    """``[Errno 28] ENOSPC: No space left on device``: the errno name helps a search."""
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"[Errno {exc.errno}] {name}: {exc.strerror}" if exc.errno else str(exc)
