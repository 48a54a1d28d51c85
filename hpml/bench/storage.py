"""Where a session's results go, made safe: pytest-benchmark numbers run files without ``O_EXCL`` and
leaves 0-byte files (:class:`ExclusiveFileStorage`); storage is checked before measuring; failed saves
are kept (:class:`Unsaved`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from pytest_benchmark.storage.file import FileStorage
from pytest_benchmark.utils import safe_dumps

from hpml.errors import HpmlError
from hpml.files import check_writable_dir, check_writable_file, os_error

SUMMARIES = "summaries"


def dumps(output_json: dict[str, Any]) -> bytes:
    """The bytes pytest-benchmark writes for a run."""
    return safe_dumps(output_json, ensure_ascii=True, indent=4).encode()


class ExclusiveFileStorage(FileStorage):
    """``FileStorage`` whose run numbers are taken atomically and exclusively."""

    def save(self, output_json: dict[str, Any], save: str) -> None:
        folder = self.get("")
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".hpml-run.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(dumps(output_json))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            while True:
                target = self.get(f"{self._next_num}_{save}.json")
                try:
                    os.link(tmp, target)  # fails if the number is taken: never two runs in one file
                    break
                except FileExistsError:
                    continue
        finally:
            Path(tmp).unlink(missing_ok=True)
        self.logger.info(f"Saved benchmark data in: {target}")


#: Less free space than this (bytes) is refused before measuring: a run file with saved data is a few MB.
MIN_FREE = 16 * 2**20


def _check_folder(folder: Path, what: str) -> None:
    """``folder`` can be created and written and has room; nothing is created."""
    existing = next(p for p in (folder, *folder.parents) if os.path.lexists(p))
    if not existing.is_dir():
        raise HpmlError(f"{what} {folder} cannot be created: {existing} is not a folder")
    check_writable_dir(existing, what)
    fs = os.statvfs(existing)
    if fs.f_bavail * fs.f_frsize < MIN_FREE:
        raise HpmlError(f"{what} {folder}: its filesystem is full ({fs.f_bavail * fs.f_frsize} bytes free)")


def check_storage(storage: Any, machine_id: str | None, saving: bool, json_path: Path | None) -> None:
    """HpmlError naming what of the storage and ``--benchmark-json`` cannot be written."""
    if isinstance(storage, FileStorage):
        root = Path(storage.path)
        _check_folder(root / SUMMARIES, "--benchmark-storage")
        if saving:
            _check_folder(root / machine_id if machine_id else root, "--benchmark-storage")
    if json_path is not None:
        check_writable_file(json_path, "--benchmark-json", create=False)
        _check_folder(Path(json_path).resolve().parent, "--benchmark-json")


class Unsaved:
    """What the session could not save at its end: one line each, and where it was kept."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.interrupted = False

    def keep(self, what: str, data: bytes, exc: BaseException) -> None:
        """Record the failure to save ``what`` and keep ``data`` in a named temporary file."""
        self.interrupted |= isinstance(exc, KeyboardInterrupt)
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else (
            os_error(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
        try:
            fd, kept = tempfile.mkstemp(prefix="hpml-unsaved-", suffix=".json")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            where = f"the measured JSON is kept in {kept}"
        except OSError as second:
            where = f"and it could not be kept either ({os_error(second)})"
        self.lines.append(f"could not save {what} ({reason}); {where}")

    def guard(self, what: str, data: bytes, write) -> None:
        """``write()``; a failure (or Ctrl-C) is kept, not raised."""
        try:
            write()
        except (OSError, HpmlError, KeyboardInterrupt) as exc:
            self.keep(what, data, exc)
