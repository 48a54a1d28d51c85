"""Writing a file atomically: the one helper every hpml writer uses.

The content goes to a temporary file in the target's folder (``.<name>.<random>.tmp``),
which is then renamed onto the target with ``os.replace``.  A reader (``hpml gate`` in
another shell, a CI step, a resumed run) sees the old file or the new one, never half
of one, and a writer killed mid-way leaves the old file intact (its temporary file is
what :func:`hpml.train.checkpoint.sweep_stale_tmp` removes later).

The output-path policy, one for every writer (:func:`output_target`): a symlink is
followed (its target is written, the link stays); a character device such as /dev/null
is written in place (a rename would replace the device node); a FIFO, socket or block
device is refused, as reading or replacing it would hang or destroy it.
"""

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
    """The path names something hpml does not write to (a FIFO, socket, block device,
    directory); its message is one line naming the path."""


def output_target(path: str | Path) -> tuple[Path, bool]:
    """``(the file to write, whether to write it in place)`` for an output path, by the
    module's policy; :class:`NotAnOutputFile` for a path that must not be written."""
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
    """Call ``write(tmp)`` to fill a temporary file next to ``path``, then rename it onto ``path``.

    ``write`` gets the temporary file's path, so anything that writes to a path works
    (``Path.write_text``, ``torch.save``, ``Image.save``).  ``parents=True`` creates
    missing folders (an output store); otherwise a missing folder is an ``OSError`` for
    the caller to report (a mistyped ``--json`` path).  The path goes through
    :func:`output_target` first.
    """
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
    """Refuse, before a run starts, an output folder that cannot be created or written
    (a regular file in the way, no permission, a read-only filesystem)."""
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
    """Refuse, before a run starts, an output file whose folder is not writable or that
    the output-path policy refuses (:func:`output_target`); ``create=False``: its folder
    must exist already (a writer that does not create folders)."""
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
