"""profile_trace writes a valid Chrome trace, atomically, after wait + warmup steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hpml.errors import HpmlError
from hpml.measure import profile_trace


def _steps(prof: profile_trace, n: int, device: str = "cpu") -> None:
    x = torch.randn(64, 64, device=device)
    for _ in range(n):
        x = torch.tanh(x @ x)
        prof.step()


def test_trace_is_valid_chrome_json(tmp_path: Path) -> None:
    path = tmp_path / "traces" / "train.json"
    with profile_trace(path, "cpu", steps=2) as prof:
        _steps(prof, prof.total_steps)
    trace = json.loads(path.read_text())
    assert trace["traceEvents"]
    assert any("mm" in str(event.get("name", "")) for event in trace["traceEvents"])
    assert [p.name for p in path.parent.iterdir()] == ["train.json"]  # no tmp left


def test_too_few_steps_is_an_hpml_error(tmp_path: Path) -> None:
    with pytest.raises(HpmlError, match="step"):
        with profile_trace(tmp_path / "t.json", "cpu", steps=1) as prof:
            _steps(prof, 1)  # still in the wait step


@pytest.mark.gpu
def test_cuda_trace_has_kernels(tmp_path: Path) -> None:
    path = tmp_path / "cuda.json"
    with profile_trace(path, "cuda", steps=2) as prof:
        _steps(prof, prof.total_steps, device="cuda")
    events = json.loads(path.read_text())["traceEvents"]
    assert any(event.get("cat") == "kernel" for event in events)
