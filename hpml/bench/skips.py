"""Why a row is not measured: it is skipped with the optimization's reason, or naming the row that times
the same work (``benchmarks/README.md``, "Paired rows")."""

from __future__ import annotations

import dataclasses
import os

import torch

from hpml.bench.matrix import PHASE_VARIANTS, Case, affects_on, is_loader_only, optimizers_for, registered_optimization
from hpml.bench.profiles import PROFILES, Profile
from hpml.data import DATASETS, dataset_info, list_datasets
from hpml.errors import HpmlError
from hpml.machine import cpu_has_bf16
from hpml.train.optimizations import validate_optimizations

LOADER_ONLY_REASON = "loader optimization: measured in loading/end-to-end rows"


def skip_reason(case: Case, profile: Profile, selected: "Selection | None" = None) -> str | None:
    """Why ``case`` is not measured (None when it is); ``selected``: the session's rows."""
    reason = _not_applicable(case, profile)
    if reason:
        return reason
    same = alias_target(case, profile)
    if same is not None:
        return (f"{case.optimization} = {same} on {case.device} (same settings): measured once, as {same}; "
                "measuring it twice would only measure noise")
    measured = end_to_end_unmeasured(case, profile, selected)
    if measured:  # before the twins: a twin of a left-out kind is left out too
        return (f"end_to_end on {case.dataset}: the {profile.name} profile measures end-to-end slices only on "
                f"{' and '.join(measured)}; it leaves out {describe_kind(case.dataset)} (its definition in "
                f"hpml/bench/profiles.py says why); deselect those rows (-k) to measure this one" + _or_every_dataset())
    twin = workload_twin(case, profile, selected)
    if twin is not None:
        mine, other = dataset_info(case.dataset), dataset_info(twin)
        head = ("the same classes too" if mine.num_classes == other.num_classes else
                f"only the classifier head's width differs, {mine.num_classes} vs {other.num_classes} classes")
        if case.phase in DATA_PHASES:
            model = "model, " if case.phase == "end_to_end" else ""
            what = (f"same samples ({DATASETS.get(case.dataset).storage}), transform, {model}input "
                    f"{_input_shape(case, profile)} and batch {profile.batch_size(mine)}")
            if case.phase != "end_to_end":
                head = "only the labels differ"
        else:
            what = f"same model, input {_input_shape(case, profile)} and batch {profile.batch_size(mine)}"
        return (f"{case.phase} on {case.dataset} = {case.phase} on {twin} at this profile ({what}; {head}): "
                f"measured once, as {twin}; deselect the {twin} row (-k) to measure this one")
    stand_in = end_to_end_stand_in(case, profile, selected)
    if stand_in is not None:
        return (f"end_to_end on {case.dataset}: the {profile.name} profile measures end-to-end slices once per "
                f"kind of data, and {stand_in} stands for {describe_kind(case.dataset)}; deselect the {stand_in} "
                f"row (-k) to measure this one" + _or_every_dataset())
    return emulated_reason(case, profile)


def _or_every_dataset() -> str:
    """The end of an end-to-end skip reason: the profiles that measure every dataset."""
    every = [n for n in PROFILES.names() if PROFILES.get(n).end_to_end_datasets is None]
    return f", or use a profile that measures every dataset ({', '.join(every)})" if every else ""


def data_kind(dataset: str) -> tuple[str, str | None]:
    """What a loader reads for ``dataset``: its modality and declared storage (None: its own files)."""
    return dataset_info(dataset).modality, DATASETS.get(dataset).storage


def describe_kind(dataset: str) -> str:
    modality, storage = data_kind(dataset)
    return f"{modality} data held as {storage}" if storage else f"{modality} data read from its own files"


def end_to_end_stand_in(case: Case, profile: Profile, selected: Selection | None = None) -> str | None:
    """The chosen end-to-end dataset of ``case``'s kind of data that stands for it, if selected
    (no equal work is claimed: the profile scopes the run)."""
    chosen = profile.end_to_end_datasets
    if type(case) is not Case or case.phase != "end_to_end" or chosen is None or case.dataset in chosen:
        return None
    for name in chosen:
        if name in DATASETS and data_kind(name) == data_kind(case.dataset):
            other = dataclasses.replace(case, dataset=name)
            if selected is None or other in selected:
                return name
    return None


def end_to_end_unmeasured(case: Case, profile: Profile, selected: Selection | None = None) -> list[str]:
    """The chosen end-to-end datasets measured instead of ``case``, whose kind of data none of them
    has; empty when ``case`` is measured (a row selected alone is measured)."""
    chosen = profile.end_to_end_datasets
    if type(case) is not Case or case.phase != "end_to_end" or chosen is None or case.dataset in chosen:
        return []
    if any(name in DATASETS and data_kind(name) == data_kind(case.dataset) for name in chosen):
        return []
    return [name for name in chosen if name in DATASETS
            and (selected is None or dataclasses.replace(case, dataset=name, model=None) in selected)]


def end_to_end_stands_for(case: Case, profile: Profile, selected: Selection | None = None) -> list[str]:
    """Datasets whose end-to-end rows were skipped because ``case``'s stands for them."""
    if type(case) is not Case or case.phase != "end_to_end" or profile.end_to_end_datasets is None:
        return []
    out = []
    for name in list_datasets():
        other = dataclasses.replace(case, dataset=name)
        if (selected is None or other in selected) and end_to_end_stand_in(other, profile, selected) == case.dataset \
                and workload_twin(other, profile, selected) is None:
            out.append(name)
    return out


#: Phases that time a model on pre-built batches: the data matters only through its shape.
SHAPE_ONLY_PHASES = ("train", "inference")
#: Phases that read the data: twins there also share storage, transform and flip rule.
DATA_PHASES = ("load", "preprocess", "end_to_end")

#: The session's rows after -k/-m deselection (the plugin collects them).
Selection = frozenset


def _input_shape(case: Case, profile: Profile) -> str:
    info = dataset_info(case.dataset)
    if info.modality == "image":
        side = profile.image_size(info)
        return f"{side}x{side} px"
    return f"{profile.sequence_length(info)} tokens ({profile.model_preset(info)} preset)"


def _workload(case: Case, profile: Profile) -> tuple | None:
    """What a row computes, all but the data's values and the head's width; None where unknown."""
    info = dataset_info(case.dataset)
    shape = (case.phase, case.device, case.optimization, case.optimizer, case.model, info.modality,
             profile.image_size(info), profile.sequence_length(info), profile.model_preset(info),
             profile.batch_size(info))
    if case.phase in SHAPE_ONLY_PHASES:
        return shape
    entry = DATASETS.get(case.dataset)
    if case.phase not in DATA_PHASES or entry.storage is None or case.cold_cache:
        return None  # a cold page cache times each dataset's own files
    return shape + (entry.storage, entry.transform, info.hflip)


def workload_twin(case: Case, profile: Profile, selected: Selection | None = None) -> str | None:
    """The earlier selected dataset whose row times the same work as ``case`` (:func:`_workload`);
    the bundled dataset comes first, then registration order."""
    if type(case) is not Case:
        return None
    mine = _workload(case, profile)
    if mine is None:
        return None
    order = sorted(list_datasets(), key=lambda name: not DATASETS.get(name).bundled)
    for name in order:
        if name == case.dataset:
            return None
        other = dataclasses.replace(case, dataset=name)
        if _workload(other, profile) != mine:
            continue
        if selected is None or other in selected:
            return name
    return None


#: ``--hpml-emulated`` (or this variable set to 1): measure every row of an emulated dtype.
EMULATED_ENV = "HPML_BENCH_EMULATED"
#: Where an emulated dtype is measured when not every row is: the cheapest real workload.
EMULATED_PHASE, EMULATED_DATASET = "inference", "amazon_polarity"


def emulated_reason(case: Case, profile: Profile) -> str | None:
    """Why a bf16-autocast row on a CPU without native bf16 is not measured (None when it is): each
    would say "a slowdown" at ~10x its baseline's cost, so one row measures it (benchmarks/README.md)."""
    if case.device != "cpu" or case.is_baseline or os.environ.get(EMULATED_ENV) == "1":
        return None
    if case.phase == EMULATED_PHASE and case.dataset == EMULATED_DATASET:
        return None
    try:
        dtype = case.settings(profile).autocast_dtype
    except HpmlError:
        return None
    if dtype is not torch.bfloat16 or cpu_has_bf16():
        return None
    return (f"bf16 autocast is emulated on this CPU (no AVX512-BF16 or AMX): measured once, on "
            f"{EMULATED_PHASE}:{EMULATED_DATASET}:cpu:{case.optimization}, a slowdown there; this row would "
            f"say the same at ~10x its baseline's cost (--hpml-emulated measures every such row)")


def _not_applicable(case: Case, profile: Profile) -> str | None:
    """Why ``case`` does not apply on its device (None when it does)."""
    try:
        validate_optimizations((registered_optimization(case.optimization),), case.device)
    except HpmlError as err:
        return str(err)
    if case.phase == "train" and is_loader_only(case.optimization, case.device, profile):
        return LOADER_ONLY_REASON
    if case.phase == "load" and not case.is_baseline:
        if "loader" not in affects_on(case.optimization, case.device):
            return f"{case.optimization} changes no loader setting on {case.device}: its loader is the baseline's"
    return None


def _group_rows(case: Case, profile: Profile) -> list[Case]:
    """The rows of ``case``'s comparison group (same phase, data, device, optimizer) that apply."""
    rows = []
    for name in PHASE_VARIANTS[case.phase](profile):
        if case.phase == "train" and case.optimizer not in optimizers_for(name):
            continue
        other = dataclasses.replace(case, optimization=name)
        if _not_applicable(other, profile) is None:
            rows.append(other)
    return rows


def alias_target(case: Case, profile: Profile) -> str | None:
    """The earlier row of ``case``'s group with the same settings on this device (CPU: ``amp_bf16`` is ``amp``)."""
    if case.is_baseline or type(case) is not Case or case.phase not in PHASE_VARIANTS:
        return None
    mine = case.settings(profile)
    for other in _group_rows(case, profile):
        if other.optimization == case.optimization:
            return None
        if other.settings(profile) == mine:
            return other.optimization
    return None


def dataset_aliases_of(case: Case, profile: Profile, selected: Selection | None = None) -> list[str]:
    """Datasets whose rows of ``case``'s phase were skipped as :func:`workload_twin` of ``case``."""
    if type(case) is not Case or _workload(case, profile) is None:
        return []
    out = []
    for name in list_datasets():
        other = dataclasses.replace(case, dataset=name)
        if name != case.dataset and (selected is None or other in selected) \
                and workload_twin(other, profile, selected) == case.dataset:
            out.append(name)
    return out


def aliases_of(case: Case, profile: Profile) -> list[str]:
    """Optimizations of ``case``'s group skipped as aliases of ``case`` (measured once, here)."""
    if type(case) is not Case or case.phase not in PHASE_VARIANTS:
        return []
    return [o.optimization for o in _group_rows(case, profile)
            if o.optimization != case.optimization and alias_target(o, profile) == case.optimization]
