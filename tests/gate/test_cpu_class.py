"""Reference summaries by CPU class: bf16 autocast's speedup depends on the CPU's ISA (on an
AVX2 CPU without native bf16 it is a slowdown), so a "reference" expectation compares a run
only with a reference measured on the same class of CPU."""

from __future__ import annotations

from pathlib import Path

from hpml.gate.config import load_gate_config
from hpml.results.machine_facts import cpu_class

from .conftest import SUMMARIES, read, write

GATED = '[tool.hpml.gate.min_speedup]\n"train:cifar10:cpu:amp_bf16" = { min = "reference", tolerance = 0.05 }\n'


def _pyproject(tmp_path: Path, reference: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.hpml.gate]\n{reference}\n" + GATED)


def _summary(tmp_path: Path, name: str, capability: str, bf16: bool) -> Path:
    summary = read(SUMMARIES[-1])
    summary["machine"] = dict(summary.get("machine") or {}, cpu_capability=capability, cpu_bf16=bf16)
    return write(tmp_path / name, summary)


def test_cpu_class_names_the_isa_and_native_bf16():
    assert cpu_class({"cpu_capability": "AVX512", "cpu_bf16": True}) == "AVX512+bf16"
    assert cpu_class({"cpu_capability": "AVX2", "cpu_bf16": False}) == "AVX2"
    assert cpu_class({}) is None


def test_references_are_read_per_cpu_class(tmp_path: Path):
    _pyproject(tmp_path, 'reference = { "AVX512+bf16" = "zen4.json", "AVX2" = "zen3.json" }')
    config = load_gate_config(tmp_path / "pyproject.toml")
    assert config.reference_for("AVX2") == tmp_path / "zen3.json"
    assert config.reference_for("AVX512+bf16") == tmp_path / "zen4.json"
    assert config.reference_for("NEON") is None and config.reference is None


def test_a_run_is_gated_against_the_reference_of_its_class(gate, tmp_path: Path):
    ref = _summary(tmp_path, "avx2-ref.json", "AVX2", False)
    _pyproject(tmp_path, f'reference = {{ "AVX2" = "{ref.name}" }}')
    code, out, _ = gate("--summary", _summary(tmp_path, "run.json", "AVX2", False))
    assert code == 0 and "avx2-ref.json" in out and "train:cifar10" in out


def test_without_a_reference_of_its_class_the_expectation_is_not_gated_and_said_so(gate, tmp_path: Path):
    ref = _summary(tmp_path, "bf16-ref.json", "AVX512", True)
    _pyproject(tmp_path, f'reference = {{ "AVX512+bf16" = "{ref.name}" }}')
    code, out, _ = gate("--summary", _summary(tmp_path, "run.json", "AVX2", False))
    assert code == 0
    assert "no reference summary for CPU class AVX2" in out and "not gated on this machine" in out


def test_which_reference_names_this_machines_reference_or_says_there_is_none(tmp_path: Path, gate, monkeypatch):
    """CI asks before measuring rows only a reference could gate: the path on stdout, or nothing
    there and the reason on stderr (exit 0 both ways: exit 1 means a regression)."""
    import hpml.machine

    monkeypatch.setattr(hpml.machine, "machine_info", lambda: {"cpu_capability": "AVX2", "cpu_bf16": False})
    _pyproject(tmp_path, 'reference = { "AVX512+bf16" = "zen4.json" }')
    code, out, err = gate("--which-reference")
    assert (code, out) == (0, "")
    assert "no reference summary for CPU class AVX2" in err and "it has: AVX512+bf16" in err
    _pyproject(tmp_path, 'reference = { "AVX512+bf16" = "zen4.json", "AVX2" = "zen3.json" }')
    code, out, err = gate("--which-reference")
    assert (code, out.strip(), err) == (0, str(tmp_path / "zen3.json"), "")
