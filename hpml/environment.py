"""Every environment variable hpml reads, declared once with its parser; :func:`check_environment`
validates them up front, so a bad value is one line and exit 2. Torch-free."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from hpml.errors import HpmlError


def _number(low: float, *, above: bool) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value) or (value <= low if above else value < low):
            raise ValueError(raw)
        return value

    return parse


def _whole_at_least_1(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(raw)
    return int(raw)


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _flag(raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError(raw)
    return raw == "1"


@dataclass(frozen=True)
class EnvVar:
    name: str
    parse: Callable[[str], Any]
    expects: str  # completes "expected ...": what a good value looks like

    def get(self, environ: Mapping[str, str] | None = None, default: Any = None) -> Any:
        """The parsed value, ``default`` when unset or blank; a bad value is an HpmlError."""
        raw = (os.environ if environ is None else environ).get(self.name, "").strip()
        if not raw:
            return default
        try:
            return self.parse(raw)
        except (ValueError, TypeError, OverflowError):
            raise HpmlError(f"{self.name}={raw!r}: expected {self.expects}") from None


_DECLARED = [
    EnvVar("HPML_DATA_DIR", _path, "a folder of real-format datasets"),
    EnvVar("HPML_CACHE_DIR", _path, "a folder for hpml's caches"),
    EnvVar("HPML_WEIGHTS_DIR", _path, "a folder of pretrained weights"),
    EnvVar("HPML_CHROMIUM", _path, "the path of a chromium executable"),
    EnvVar("HPML_DIST_TIMEOUT", _number(0, above=True), "a finite number of seconds > 0"),
    EnvVar("HPML_BENCH_PROFILE", str, "a benchmark profile name"),
    EnvVar("HPML_BENCH_IDLE", str, "an idle-CPU policy name"),
    EnvVar("HPML_BENCH_PAIRS", _whole_at_least_1, "a whole number of pairs >= 1"),
    EnvVar("HPML_BENCH_EMULATED", _flag, "0 or 1"),
    EnvVar("HPML_PLANTED_SLOWDOWN", _number(0, above=False),
           "a fraction >= 0 (0.2 makes every measured call 20% slower)"),
    EnvVar("HPML_PLANTED_COMPUTE", _number(0, above=False),
           "a fraction >= 0 (0.1 adds real compute worth 10% of each measured call)"),
    EnvVar("HPML_PLANTED_COMPUTE_ONLY", str, "an optimization name"),
    EnvVar("HPML_BATON", str, "set by hpml gate only"),
    EnvVar("HPML_BATON_ROOT", _path, "set by hpml gate only"),
    # not hpml's own, but hpml sizes DDP ranks' threads from it
    EnvVar("OMP_NUM_THREADS", _whole_at_least_1, "a whole number of threads >= 1"),
]

#: name -> declaration.
VARS: dict[str, EnvVar] = {v.name: v for v in _DECLARED}


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Parse every declared variable that is set; the first bad one is an HpmlError."""
    for var in _DECLARED:
        var.get(environ)
