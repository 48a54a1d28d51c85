"""The benchmark matrix: rows from the registries, and why a row is skipped."""

from __future__ import annotations

import pytest
import torch

from hpml.bench import matrix, skips
from hpml.bench.matrix import Case
from hpml.bench.skips import LOADER_ONLY_REASON, skip_reason
from hpml.bench.profiles import get_profile
from hpml.data import dataset_info, list_datasets
from hpml.errors import HpmlError
from hpml.train.optimizations import OPTIMIZATIONS, Optimization

SMOKE = get_profile("smoke")


def _names(cases, **where):
    return {c.optimization for c in cases if all(getattr(c, k) == v for k, v in where.items())}


def test_train_rows_cover_every_optimization_dataset_and_device():
    cases = matrix.train_cases(SMOKE)
    expected = {n for n in OPTIMIZATIONS if not OPTIMIZATIONS.get(n).distributed_only}
    for dataset in list_datasets():
        for device in matrix.DEVICES:
            assert _names(cases, dataset=dataset, device=device) == expected
    assert not {n for n in OPTIMIZATIONS if OPTIMIZATIONS.get(n).distributed_only} & _names(cases)


def test_a_registered_optimization_adds_rows(monkeypatch):
    monkeypatch.setattr(OPTIMIZATIONS, "_entries", dict(OPTIMIZATIONS._entries))
    OPTIMIZATIONS.add("noop_test", Optimization("noop_test", "does nothing", lambda s, ctx: s))
    rows = [c for c in matrix.train_cases(SMOKE) if c.optimization == "noop_test"]
    assert len(rows) == len(list_datasets()) * len(matrix.DEVICES)


def test_reference_rows_get_both_optimizers():
    cases = matrix.train_cases(SMOKE, datasets=["cifar10"])
    by_opt = {}
    for c in cases:
        by_opt.setdefault(c.optimization, set()).add(c.optimizer)
    assert by_opt["baseline"] == by_opt["optimized"] == {"sgd", "adam"}
    assert by_opt["amp"] == by_opt["grad_accum"] == {"sgd"}


def test_phase_matrices_follow_what_an_optimization_changes():
    inference = set(matrix.inference_optimizations(SMOKE))
    assert {"baseline", "amp", "channels_last", "compile"} <= inference
    assert not {"grad_accum", "workers", "fused_optimizer"} & inference
    loading = set(matrix.loading_variants(SMOKE))
    assert {"baseline", "workers", "pin_memory", "device_loader", "workers_nonpersistent", "prefetch"} <= loading
    assert not {"amp", "grad_accum"} & loading
    e2e = set(matrix.end_to_end_optimizations(SMOKE))
    assert {"baseline", "workers", "device_loader", "optimized"} <= e2e and "amp" not in e2e


@pytest.mark.parametrize(
    "case,reason",
    [
        (Case("train", "cifar10", "cpu", "amp_fp16", "sgd"), "amp_fp16 applies only to cuda, not cpu"),
        (Case("train", "cifar10", "cpu", "pin_memory", "sgd"), "pin_memory applies only to cuda, not cpu"),
        (Case("train", "cifar10", "cpu", "cudnn_benchmark", "sgd"), "cudnn_benchmark applies only to cuda, not cpu"),
        (Case("train", "cifar10", "cpu", "tf32", "sgd"), "tf32 applies only to cuda, not cpu"),
        (Case("train", "cifar10", "cpu", "workers", "sgd"), LOADER_ONLY_REASON),
        (Case("train", "cifar10", "cpu", "device_loader", "sgd"), LOADER_ONLY_REASON),
        (Case("load", "cifar10", "cpu", "optimized", source="real"), "changes no loader setting on cpu"),
        (Case("load", "cifar10", "cpu", "pin_memory", source="real"), "pin_memory applies only to cuda"),
    ],
    ids=lambda v: v.id if isinstance(v, Case) else None,
)
def test_rows_that_do_not_apply_say_why(case, reason):
    assert reason in (skip_reason(case, SMOKE) or "")


@pytest.mark.parametrize(
    "case",
    [
        Case("train", "cifar10", "cpu", "baseline", "sgd"),
        Case("train", "imagenet", "cpu", "amp_bf16", "adam"),
        Case("train", "cifar10", "cpu", "optimized", "sgd"),
        Case("load", "cifar10", "cpu", "workers_nonpersistent", source="synthetic"),
        Case("end_to_end", "digits", "cpu", "device_loader", "sgd", source="real"),
    ],
    ids=lambda c: c.id,
)
def test_rows_that_apply_have_no_reason(case, monkeypatch):
    monkeypatch.setattr(skips, "cpu_has_bf16", lambda: True)  # else bf16 rows are measured once (emulated)
    assert skip_reason(case, SMOKE, frozenset({case})) is None  # selected alone (no dataset twin runs)


def test_marks_gpu_rows_and_compile_rows():
    def names(case):
        return {m.name for m in matrix.marks(case, SMOKE)}

    assert names(Case("train", "cifar10", "cuda", "baseline", "sgd")) == {"gpu"}
    assert names(Case("train", "cifar10", "cpu", "compile", "sgd")) == {"slow"}
    assert names(Case("inference", "cifar10", "cuda", "compile")) == {"gpu", "slow"}
    assert names(Case("train", "cifar10", "cpu", "optimized", "sgd")) == set()


def test_labels_keep_real_and_twin_rows_apart():
    real = Case("load", "cifar10", "cpu", "baseline", source="real")
    twin = Case("load", "cifar10", "cpu", "baseline", source="synthetic")
    assert (real.label, twin.label) == ("cifar10", "cifar10-synthetic")
    assert real.baseline_key != twin.baseline_key
    assert real.group == "load:cifar10:cpu" and real.model is None
    train = Case("train", "amazon_full", "cpu", "amp", "sgd")
    assert train.group == "train:amazon_full:cpu" and train.model == "xlnet"
    assert train.id == "amazon_full-cpu-amp-sgd"


def test_knob_settings_vary_the_workers_optimization():
    base = matrix.settings_of("workers", "cpu", SMOKE)
    assert base.num_workers == SMOKE.num_workers and base.persistent_workers
    assert not matrix.settings_of("workers_nonpersistent", "cpu", SMOKE).persistent_workers
    assert matrix.settings_of("prefetch", "cpu", SMOKE).prefetch_factor == SMOKE.prefetch_factor
    assert matrix.settings_of("grad_accum", "cpu", SMOKE).accum_steps == SMOKE.accum_steps


def test_optimizations_composing_to_the_same_settings_are_measured_once():
    from hpml.bench.skips import alias_target, aliases_of, skip_reason
    from hpml.bench.profiles import get_profile

    p = get_profile("smoke")
    amp, bf16 = Case("train", "cifar10", "cpu", "amp", "sgd"), Case("train", "cifar10", "cpu", "amp_bf16", "sgd")
    assert bf16.settings(p) == amp.settings(p)
    assert alias_target(bf16, p) == "amp" and alias_target(amp, p) is None
    assert aliases_of(amp, p) == ["amp_bf16"] and aliases_of(bf16, p) == []
    assert skip_reason(bf16, p).startswith("amp_bf16 = amp on cpu (same settings): measured once, as amp")
    # on CUDA amp is fp16 + GradScaler: a different thing, measured separately
    cuda_amp, cuda_bf16 = Case("inference", "cifar10", "cuda", "amp"), Case("inference", "cifar10", "cuda", "amp_bf16")
    assert cuda_amp.settings(p) != cuda_bf16.settings(p)
    assert alias_target(cuda_bf16, p) is None and aliases_of(cuda_amp, p) == ["amp_fp16"]  # amp = amp_fp16 on cuda


def test_datasets_with_the_same_step_are_measured_once():
    """CIFAR-10/100 at 32 px run the digits step (ResNet-50, 3x32x32, batch 8; the head has 10 or
    100 outputs), amazon_full the amazon_polarity one: measured once, in shape-only phases; in the
    phases that read the data, CIFAR-100 is CIFAR-10 (same storage, transform and flip rule)."""
    from hpml.bench.skips import dataset_aliases_of, workload_twin

    p = get_profile("smoke")
    twins = {d: workload_twin(Case("train", d, "cpu", "channels_last", "sgd"), p) for d in list_datasets()}
    assert twins == {"cifar10": "digits", "cifar100": "digits", "imagenet": None, "amazon_polarity": None,
                     "amazon_full": "amazon_polarity", "digits": None}
    c100 = Case("inference", "cifar100", "cpu", "baseline")
    assert skip_reason(c100, p).startswith("inference on cifar100 = inference on digits at this profile (same model, "
                                           "input 32x32 px and batch 8; only the classifier head's width differs, "
                                           "100 vs 10 classes): measured once, as digits")
    assert dataset_aliases_of(Case("inference", "digits", "cpu", "baseline"), p) == ["cifar10", "cifar100"]
    # the work differs: another image size; the model is part of the work (its twin is digits' resnet18 row)
    assert workload_twin(Case("train", "imagenet", "cpu", "baseline", "sgd"), p) is None
    r18 = Case("train", "cifar10", "cpu", "baseline", "sgd", model="resnet18")
    assert workload_twin(r18, p, frozenset({r18, Case("train", "digits", "cpu", "baseline", "sgd")})) is None
    # phases that read the data: only datasets held and transformed alike (CIFAR-100 as CIFAR-10;
    # digits never flips, ImageNet decodes JPEGs, text is tokenized per review)
    for phase in ("load", "preprocess", "end_to_end"):
        opt = "sgd" if phase == "end_to_end" else None
        assert {d: workload_twin(Case(phase, d, "cpu", "workers" if phase != "preprocess" else "baseline", opt,
                                      source="real"), p)
                for d in list_datasets()} == {"cifar10": None, "cifar100": "cifar10", "imagenet": None,
                                              "amazon_polarity": None, "amazon_full": None, "digits": None}
        assert workload_twin(Case(phase, "cifar100", "cpu", "baseline", opt, source="synthetic"), p) == "cifar10"
    assert skip_reason(Case("load", "cifar100", "cpu", "workers"), p).startswith(
        "load on cifar100 = load on cifar10 at this profile (same samples (uint8 3x32x32 in memory), transform, "
        "input 32x32 px and batch 8; only the labels differ)")
    assert dataset_aliases_of(Case("end_to_end", "cifar10", "cpu", "baseline", "sgd"), p) == ["cifar100"]
    assert workload_twin(Case("load", "cifar100", "cpu", "baseline", source="real", cold_cache=True), p) is None
    # against the session's selection: a row whose twin does not run is measured
    digits_row = Case("train", "digits", "cpu", "channels_last", "sgd")
    c10_row = Case("train", "cifar10", "cpu", "channels_last", "sgd")
    assert workload_twin(c10_row, p, frozenset({digits_row, c10_row})) == "digits"
    assert workload_twin(c10_row, p, frozenset({c10_row})) is None and skip_reason(c10_row, p, frozenset({c10_row})) is None
    assert dataset_aliases_of(digits_row, p, frozenset({digits_row})) == []


def test_the_smoke_profile_measures_end_to_end_once_per_kind_of_data():
    """End to end, smoke runs imagenet (JPEG files) and amazon_polarity (reviews); the others of
    each kind are skipped naming their stand-in, unless it is deselected.  In-memory arrays
    (CIFAR's, digits') are left out, naming the rows measured instead, unless those are
    deselected.  Profiles without the field measure every dataset."""
    from hpml.bench.skips import end_to_end_stand_in, end_to_end_stands_for, end_to_end_unmeasured

    p = get_profile("smoke")
    assert all(name in list_datasets() for name in p.end_to_end_datasets)
    e2e = {d: Case("end_to_end", d, "cpu", "workers", "sgd", source="real") for d in list_datasets()}
    assert {d: end_to_end_stand_in(c, p) for d, c in e2e.items()} == {
        "cifar10": None, "cifar100": None, "imagenet": None, "amazon_polarity": None,
        "amazon_full": "amazon_polarity", "digits": None}
    assert {d: end_to_end_unmeasured(c, p) for d, c in e2e.items()} == {
        "cifar10": ["imagenet", "amazon_polarity"], "cifar100": ["imagenet", "amazon_polarity"], "imagenet": [],
        "amazon_polarity": [], "amazon_full": [], "digits": ["imagenet", "amazon_polarity"]}
    for d in ("cifar10", "cifar100", "digits"):  # left out before CIFAR-100's twin rule: cifar10 does not run
        reason = skip_reason(e2e[d], p)
        assert reason.startswith(f"end_to_end on {d}: the smoke profile measures end-to-end slices only on imagenet "
                                 "and amazon_polarity; it leaves out image data held as uint8 3x32x32 in memory"), reason
        assert "(cpu, standard, full)" in reason
    reason = skip_reason(e2e["amazon_full"], p)
    assert reason.startswith("end_to_end on amazon_full: the smoke profile measures end-to-end slices once per kind "
                             "of data, and amazon_polarity stands for text data read from its own files; deselect the "
                             "amazon_polarity row (-k) to measure this one"), reason
    assert end_to_end_stands_for(e2e["amazon_polarity"], p) == ["amazon_full"]
    assert end_to_end_stands_for(e2e["imagenet"], p) == []
    # against the selection: with the measured rows deselected, the others are measured
    assert skip_reason(e2e["digits"], p, frozenset({e2e["digits"]})) is None
    assert skip_reason(e2e["amazon_full"], p, frozenset({e2e["amazon_full"]})) is None
    assert skip_reason(e2e["cifar100"], p, frozenset({e2e["cifar100"], e2e["cifar10"]})).startswith(
        "end_to_end on cifar100 = end_to_end on cifar10 at this profile")  # selected together: twins again
    assert end_to_end_stands_for(e2e["amazon_polarity"], p, frozenset({e2e["amazon_polarity"]})) == []
    # other phases and other profiles are untouched
    assert end_to_end_stand_in(Case("train", "digits", "cpu", "workers", "sgd"), p) is None
    assert end_to_end_unmeasured(Case("train", "digits", "cpu", "workers", "sgd"), p) == []
    assert all(end_to_end_stand_in(c, get_profile("cpu")) is None for c in e2e.values())
    assert all(end_to_end_unmeasured(c, get_profile("cpu")) == [] for c in e2e.values())


def test_rows_run_grouped_by_baseline_baseline_first_fresh_process_rows_after_all():
    from hpml.bench.plugin import run_order

    class Item:
        def __init__(self, case):
            self.callspec = type("CallSpec", (), {"params": {"case": case}})()
            self.case = case

    cases = [
        Case("train", "cifar10", "cpu", "host_allocator", "sgd"),
        Case("train", "cifar10", "cpu", "optimized", "adam"),
        Case("train", "cifar10", "cpu", "amp", "sgd"),
        Case("train", "cifar10", "cpu", "baseline", "adam"),
        Case("train", "cifar10", "cpu", "baseline", "sgd"),
        Case("train", "cifar10", "cpu", "channels_last", "sgd"),
    ]
    order = [(i.case.optimization, i.case.optimizer) for i in run_order([Item(c) for c in cases])]
    assert order == [("baseline", "sgd"), ("amp", "sgd"), ("channels_last", "sgd"), ("baseline", "adam"),
                     ("host_allocator", "sgd"), ("optimized", "adam")]


def test_model_axis_runs_each_model_on_the_datasets_whose_input_it_takes():
    from hpml.bench.matrix import train_cases

    profile = get_profile("smoke")
    cases = train_cases(profile, models=["torchvision:mobilenet_v3_small", "hf:bert"])
    by_model = {}
    for c in cases:
        by_model.setdefault(c.model, set()).add(dataset_info(c.dataset).modality)
    assert by_model == {"torchvision:mobilenet_v3_small": {"image"}, "hf:bert": {"text"}}
    row = next(c for c in cases if c.model == "hf:bert" and c.is_baseline)
    assert "hf:bert" in row.id and "hf:bert" in row.group and row.baseline_key[2] == "hf:bert"


def test_default_rows_keep_their_ids_and_run_the_dataset_model():
    from hpml.bench.matrix import Case

    row = Case("train", "cifar10", "cpu", "baseline", "sgd")
    assert row.model == "resnet50" and row.id == "cifar10-cpu-baseline-sgd" and row.group == "train:cifar10:cpu"
    assert Case("load", "cifar10", "cpu", "baseline").model is None


def test_unknown_or_unusable_models_are_refused():
    from hpml.bench.matrix import check_models

    with pytest.raises(HpmlError, match="unknown model source 'foo'"):
        check_models(["foo:bar"])
    check_models(["resnet18", "hf:bert"])


def test_every_phase_is_declared_once_and_every_matrix_phase_has_a_build():
    from hpml.bench.matrix import PHASE_VARIANTS
    from hpml.bench.phase_builds import PHASE_BUILDS
    from hpml.results.phase_names import PHASES, phase_names

    assert set(PHASE_BUILDS) <= set(PHASES) and set(PHASE_VARIANTS) <= set(PHASE_BUILDS)
    assert set(PHASES) - set(PHASE_BUILDS) == {"ddp"}  # DDP rows: benchmarks/test_ddp.py, a pool per world size
    for name in PHASE_BUILDS:
        for case in PHASE_BUILDS.get(name).cases(get_profile("smoke"), datasets=["digits"]):
            assert case.phase == name
            assert (case.model is None) == (name in phase_names(runs_model=False))


def test_what_an_optimization_affects_decides_the_phases_that_measure_it():
    from hpml.bench import matrix
    from hpml.train.optimizations import OPTIMIZATIONS

    profile = get_profile("smoke")
    inference, loading = matrix.inference_optimizations(profile), matrix.loading_variants(profile)
    for name in OPTIMIZATIONS:
        opt = OPTIMIZATIONS.get(name)
        if opt.distributed_only or name == "baseline":
            continue
        assert (name in inference) == ("forward" in opt.affects), name
        assert (name in loading) == ("loader" in opt.affects), name
    assert {"workers", "pin_memory", "device_loader"} <= set(loading)
    assert {"amp_bf16", "channels_last", "compile", "host_allocator"} <= set(inference)


@pytest.mark.parametrize("native", [True, False])
def test_emulated_bf16_is_measured_once_on_a_cpu_without_it(native, monkeypatch):
    """Without native bf16 only the Amazon-review inference row measures bf16 autocast; the
    others are skipped naming it; with native bf16, or --hpml-emulated, every row runs."""
    from hpml.bench.skips import EMULATED_ENV, emulated_reason

    monkeypatch.setattr(skips, "cpu_has_bf16", lambda: native)
    monkeypatch.delenv(EMULATED_ENV, raising=False)
    p = get_profile("smoke")
    kept = Case("inference", "amazon_polarity", "cpu", "amp")
    others = [Case("inference", "digits", "cpu", "amp"), Case("train", "digits", "cpu", "amp", "sgd"), Case("train", "cifar10", "cpu", "amp", "sgd"),
              Case("inference", "imagenet", "cpu", "amp"), Case("end_to_end", "digits", "cpu", "amp")]
    fp32 = [Case("train", "cifar10", "cpu", "channels_last", "sgd"), Case("train", "cifar10", "cpu", "baseline", "sgd")]
    assert skip_reason(kept, p) is None
    for case in fp32:
        assert emulated_reason(case, p) is None
    for case in others:
        reason = skip_reason(case, p, frozenset({case}))  # selected alone: no dataset twin runs
        if native:
            assert reason is None, case
        else:
            assert reason.startswith("bf16 autocast is emulated on this CPU") and "inference:amazon_polarity:cpu:amp" in reason
    monkeypatch.setenv(EMULATED_ENV, "1")
    assert all(skip_reason(case, p, frozenset({case})) is None for case in others)
    assert emulated_reason(Case("train", "cifar10", "cuda", "amp_bf16", "sgd"), p) is None  # CUDA: native


def test_datasets_declaring_the_same_storage_serve_samples_with_the_same_work(tmp_path):
    """The declaration behind the data phases' twins, checked through the real readers: CIFAR-10
    and CIFAR-100 files decode into the same kind of dataset (one uint8 [N, 3, 32, 32] tensor
    in memory) with the same transform up to the normalization constants; digits, declaring
    the same storage, differs by its flip rule, so it is not their twin."""
    import dataclasses

    from hpml.data import DATASETS, create_dataset
    from hpml.data.formats import write_cifar10, write_cifar100

    write_cifar10(tmp_path, n_train=16)
    write_cifar100(tmp_path, n_train=16)
    read = {name: create_dataset(name, "train", data_dir=tmp_path, synthetic=False, size=16)
            for name in ("cifar10", "cifar100")}
    read["digits"] = create_dataset("digits", "train", size=16)
    for name, ds in read.items():
        images, labels = ds.arrays()
        assert (type(ds).__name__, images.dtype, tuple(images.shape[1:])) == ("TensorImageDataset", torch.uint8, (3, 32, 32))
        assert DATASETS.get(name).storage == "uint8 3x32x32 in memory"
    recipe = {name: dataclasses.replace(ds.transform, mean=(0.0,), std=(1.0,)) for name, ds in read.items()}
    assert recipe["cifar10"] == recipe["cifar100"] != recipe["digits"]


def test_text_twins_measured_once_are_the_same_work_up_to_the_head():
    """amz5 = amz2 in train and inference: their tokenizers must match, or the embeddings differ
    (each twin's own tokenizer ended at 315 vs 374 pieces)."""
    from hpml.data import dataset_info
    from hpml.data.synthetic import SyntheticReviews, synthetic_tokenizer

    profile = get_profile("smoke")
    full = matrix.Case("train", "amazon_full", "cpu", "baseline", "sgd")
    assert skips.workload_twin(full, profile) == "amazon_polarity"
    two, five = synthetic_tokenizer(dataset_info("amazon_polarity")), synthetic_tokenizer(dataset_info("amazon_full"))
    assert two.vocab_size == five.vocab_size
    text = SyntheticReviews(5, "train", 3, seed=1).text(2)
    assert two.encode(text, 32) == five.encode(text, 32)
