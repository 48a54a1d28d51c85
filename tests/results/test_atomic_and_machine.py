"""The one atomic writer and the one ``machine_info`` parser."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hpml.files import atomic_write, write_text_atomic
from hpml.results.machine_facts import comparable_machine, cpu_class, machine_facts, machine_line


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "out.json", "old\n")

    def half_then_crash(tmp: Path) -> None:
        tmp.write_text("ha")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, half_then_crash)
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    write_text_atomic(path, "new\n")
    assert path.read_text() == "new\n" and stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_missing_folder_is_an_error_unless_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "file.json"
    with pytest.raises(OSError):
        write_text_atomic(target, "x")
    assert not (tmp_path / "no").exists()
    assert write_text_atomic(target, "x", parents=True).read_text() == "x"


PYTEST_BENCHMARK = {  # pytest-benchmark's machine_info with hpml's own facts under "hpml"
    "node": "ci-1234", "system": "Linux", "machine": "x86_64", "processor": "x86_64",
    "cpu": {"brand_raw": "AMD EPYC 7763", "count": 4},
    "hpml": {"torch": "2.4.1", "gpu": None, "cpu": "AMD EPYC 7763", "cpu_count": 4,
             "cpu_capability": "AVX2", "cpu_bf16": False,
             "cpu_idle": {"policy": "awake", "held": True, "detail": "x", "cross_cpu_roundtrip_us": 5.3}},
}
HPML_ONLY = {"torch": "2.4.1", "gpu": "NVIDIA H100", "cpu": "AMD EPYC 7763", "cpu_count": 4,
             "cpu_capability": "AVX512", "cpu_bf16": True}


def test_every_shape_reads_the_same_way() -> None:
    facts = machine_facts(PYTEST_BENCHMARK)
    assert facts == {"cpu": "AMD EPYC 7763", "cores": 4, "torch": "2.4.1", "gpu": None, "node": "ci-1234",
                     "cpu_capability": "AVX2", "cpu_bf16": False, "system": "Linux", "arch": "x86_64",
                     "cpu_idle": PYTEST_BENCHMARK["hpml"]["cpu_idle"]}
    assert machine_facts(facts) == facts  # a summary's "machine" reads back unchanged
    hpml = machine_facts(HPML_ONLY)
    assert (hpml["cpu"], hpml["cores"], hpml["gpu"]) == ("AMD EPYC 7763", 4, "NVIDIA H100")
    assert machine_facts(None) == dict.fromkeys(facts)


def test_comparable_machine_ignores_the_host_name_but_not_the_hardware() -> None:
    other_host = {**PYTEST_BENCHMARK, "node": "ci-5678"}
    assert comparable_machine(other_host) == comparable_machine(PYTEST_BENCHMARK)
    # a run from before hpml recorded the idle CPUs' state still compares with one that did
    older = {**PYTEST_BENCHMARK, "hpml": {k: v for k, v in PYTEST_BENCHMARK["hpml"].items() if k != "cpu_idle"}}
    assert comparable_machine(older) == comparable_machine(PYTEST_BENCHMARK)
    more_cores = {**PYTEST_BENCHMARK, "cpu": {"brand_raw": "AMD EPYC 7763", "count": 8}}
    assert comparable_machine(more_cores) != comparable_machine(PYTEST_BENCHMARK)


def test_line_and_cpu_class() -> None:
    assert machine_line(PYTEST_BENCHMARK) == "AMD EPYC 7763, 4 cores, idle CPUs kept awake"
    asleep = {**PYTEST_BENCHMARK, "hpml": {**PYTEST_BENCHMARK["hpml"], "cpu_idle": {"policy": "os", "held": False}}}
    assert machine_line(asleep) == "AMD EPYC 7763, 4 cores, idle CPUs left to sleep"
    assert machine_line(HPML_ONLY) == "AMD EPYC 7763, 4 cores, NVIDIA H100"  # a run from before it was recorded
    assert machine_line({}) == "?"
    assert cpu_class(PYTEST_BENCHMARK) == "AVX2" and cpu_class(HPML_ONLY) == "AVX512+bf16"
    assert cpu_class(machine_facts(PYTEST_BENCHMARK)) == "AVX2" and cpu_class({}) is None
