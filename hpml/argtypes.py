"""argparse types: an empty value is a usage error (exit 2), never a default in disguise (``--json ''``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def text(raw: str) -> str:
    if not raw.strip():
        raise argparse.ArgumentTypeError("empty value")
    return raw


def path(raw: str) -> Path:
    return Path(text(raw))
