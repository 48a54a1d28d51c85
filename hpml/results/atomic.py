"""Writing a file atomically: the one helper every hpml writer uses.

The content goes to a temporary file in the target's folder (``.<name>.<random>.tmp``),
which is then renamed onto the target with ``os.replace``.  A reader (``hpml gate`` in
another shell, a CI step, a resumed run) sees the old file or the new one, never half
of one, and a writer killed mid-way leaves the old file intact (its temporary file is
what :func:`hpml.train.checkpoint.sweep_stale_tmp` removes later).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

#: Permissions of a written file: ordinary data (mkstemp's own 0600 would make it private).
MODE = 0o644


def atomic_write(path: str | Path, write: Callable[[Path], object], *, parents: bool = False,
                 mode: int = MODE) -> Path:
    """Call ``write(tmp)`` to fill a temporary file next to ``path``, then rename it onto ``path``.

    ``write`` gets the temporary file's path, so anything that writes to a path works
    (``Path.write_text``, ``torch.save``, ``Image.save``).  ``parents=True`` creates
    missing folders (an output store); otherwise a missing folder is an ``OSError`` for
    the caller to report (a mistyped ``--json`` path).
    """
    path = Path(path)
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
