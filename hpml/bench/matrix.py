"""The benchmark matrix, generated from the registries.

Every row is a :class:`Case`: a phase, a dataset, a device and an optimization (plus the
optimizer for phases that train, and the data source for phases that read data).  The
rows come from :data:`hpml.train.optimizations.OPTIMIZATIONS` and
:func:`hpml.data.list_datasets`, so registering an optimization or a dataset adds rows
without editing the benchmarks.  Which optimizations a phase measures follows from what
each declares it affects (:attr:`~hpml.train.optimizations.Optimization.affects`: the step,
an eval forward, the loader, the process):

* ``train`` (one optimizer step): every optimization that is not ``distributed_only``.
  Loader-only ones (they change nothing but loader settings) are skipped with
  :data:`LOADER_ONLY_REASON`: a pure step on pre-built batches cannot see them.
* ``inference`` (an eval forward): ``baseline`` + those changing the forward pass
  (``forward``).
* ``load`` (batches from a loader, no compute): ``baseline`` + those changing loader
  settings (``loader``) + the loader knobs of :data:`LOADER_KNOBS`, which
  isolate what the ``workers`` optimization bundles (persistence, prefetch depth).
* ``end_to_end`` (loader + step): ``baseline`` + loader optimizations + composites
  (``optimized``), so loader effects show up in training throughput.
* ``preprocess`` (decode + augment per sample): ``baseline`` only; nothing in the
  catalogue changes per-sample decoding.

A row that does not apply (fp16 on CPU, pin_memory without an accelerator) is kept and
skipped with the optimization's own reason, never silently dropped or measured as
something else.  Rows that would measure the same work twice are skipped naming the row
that measures it: an optimization that composes to another's settings on this device
(:func:`alias_target`: ``amp_bf16`` is ``amp`` on CPU), and, in the phases that time a model
on pre-built batches, a dataset whose model, input shape and batch equal another's at this
profile (:func:`workload_twin`: CIFAR-10 and CIFAR-100 at 32 px are the digits step, up to
the classifier head's width), and, in the phases that read the data, a dataset held and
transformed like another (CIFAR-100 loads, pre-processes and trains end to end as CIFAR-10).
Both resolve against the session's selection: a row whose twin is deselected is measured.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import pytest
import torch

from hpml.bench.profiles import PROFILES, Profile
from hpml.data import DATASETS, dataset_info, list_datasets
from hpml.errors import HpmlError
from hpml.machine import cpu_has_bf16
from hpml.models import model_spec
from hpml.registry import Registry
from hpml.results.phase_names import phase_names
from hpml.train.optimizations import (
    OPTIMIZATIONS,
    OptContext,
    Settings,
    affects,
    expand,
    is_process_wide,
    validate_optimizations,
)

DEVICES = ("cpu", "cuda")
OPTIMIZERS = ("sgd", "adam")
#: Data sources of the phases that read data: the real on-disk format, or the synthetic twin.
SOURCES = ("real", "synthetic")

LOADER_ONLY_REASON = "loader optimization: measured in loading/end-to-end rows"

BASELINE = "baseline"
#: Phases that run no model: their rows have ``model`` None (hpml.results.phase_names).
MODEL_FREE_PHASES = phase_names(runs_model=False)


# --- what an optimization changes ----------------------------------------------------


def settings_of(name: str, device: str, profile: Profile) -> Settings:
    """The settings ``name`` folds to on ``device``, without availability checks."""
    ctx = OptContext(device, profile.accum_steps, profile.num_workers)
    if name in LOADER_KNOBS:
        knob = LOADER_KNOBS.get(name)
        return knob.change(settings_of(knob.base, device, profile), profile)
    settings = Settings()
    for member in expand((name,), device):
        settings = OPTIMIZATIONS.get(member).apply(settings, ctx)
    return settings


def affects_on(name: str, device: str) -> frozenset[str]:
    """What ``name`` changes on ``device`` (:attr:`Optimization.affects`; a loader knob: the loader)."""
    if name in LOADER_KNOBS:
        return frozenset({"loader"})
    return affects((name,), device)


def _affects_anywhere(name: str) -> frozenset[str]:
    return frozenset(a for device in DEVICES for a in affects_on(name, device))


def is_loader_only(name: str, device: str, profile: Profile) -> bool:
    return affects_on(name, device) == {"loader"}


# --- loader knobs (measurement-only variants of the `workers` optimization) ----------


@dataclass(frozen=True)
class LoaderKnob:
    """A loader variant that is not a registered optimization: ``base`` changed by ``change``."""

    name: str
    description: str
    base: str  # the registered optimization it varies
    change: Callable[[Settings, Profile], Settings]


LOADER_KNOBS: Registry[LoaderKnob] = Registry("loader knob")
LOADER_KNOBS.add("workers_nonpersistent", LoaderKnob(
    "workers_nonpersistent",
    "worker processes started afresh for every pass (what persistent workers save)",
    "workers",
    lambda s, p: dataclasses.replace(s, persistent_workers=False),
))
LOADER_KNOBS.add("prefetch", LoaderKnob(
    "prefetch",
    "persistent workers with the profile's deeper prefetch (batches in flight per worker)",
    "workers",
    lambda s, p: dataclasses.replace(s, prefetch_factor=p.prefetch_factor),
))


def registered_optimization(name: str) -> str:
    """The registered optimization a row runs: a loader knob's ``base``, else ``name`` itself."""
    return LOADER_KNOBS.get(name).base if name in LOADER_KNOBS else name


# --- which optimizations each phase measures -------------------------------------------


def _catalogue() -> list[str]:
    return [name for name in OPTIMIZATIONS if not OPTIMIZATIONS.get(name).distributed_only]


def train_optimizations(profile: Profile) -> list[str]:
    return _catalogue()


def inference_optimizations(profile: Profile) -> list[str]:
    return [n for n in _catalogue() if n == BASELINE or "forward" in _affects_anywhere(n)]


def loading_variants(profile: Profile) -> list[str]:
    registered = [n for n in _catalogue() if n == BASELINE or "loader" in _affects_anywhere(n)]
    return registered + list(LOADER_KNOBS)


def end_to_end_optimizations(profile: Profile) -> list[str]:
    return [
        n for n in _catalogue()
        if n == BASELINE or "loader" in _affects_anywhere(n) or OPTIMIZATIONS.get(n).composite
    ]


def optimizers_for(name: str) -> tuple[str, ...]:
    """Both optimizers for the reference rows (baseline, composites); SGD for the rest."""
    return OPTIMIZERS if name == BASELINE or OPTIMIZATIONS.get(name).composite else OPTIMIZERS[:1]


# --- cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One benchmark row."""

    phase: str  # train | load | preprocess | inference | end_to_end
    dataset: str  # registered dataset name
    device: str  # cpu | cuda
    optimization: str  # a registered optimization, or a loader knob (load phase)
    optimizer: str | None = None  # phases that train: sgd | adam
    source: str = "synthetic"  # real (on-disk format) | synthetic (twin)
    model: str | None = None  # phases that run a model; None: the dataset's default (resnet50, xlnet)
    cold_cache: bool = False  # load rows: the dataset files are evicted from the page cache before each call

    def __post_init__(self) -> None:
        runs_model = self.phase not in MODEL_FREE_PHASES
        model = (self.model or dataset_info(self.dataset).model) if runs_model else None
        object.__setattr__(self, "model", model)  # frozen: resolved once, here

    @property
    def default_model(self) -> bool:
        """Whether the row runs its dataset's own model (ids and groups then leave the model out)."""
        return self.model is None or self.model == dataset_info(self.dataset).model

    @property
    def label(self) -> str:
        """The dataset as recorded: load/preprocess rows on the twin say so (``cifar10-synthetic``),
        so the real-format and twin rows of one dataset keep distinct case keys; so do
        cold-cache rows (``imagenet-coldcache``)."""
        if self.phase in MODEL_FREE_PHASES and self.source == "synthetic":
            return f"{self.dataset}-synthetic"
        if self.cold_cache:
            return f"{self.dataset}-coldcache"
        return self.dataset

    @property
    def group(self) -> str:
        model = "" if self.default_model else f":{self.model}"
        return f"{self.phase}:{self.label}{model}:{self.device}"

    @property
    def id(self) -> str:
        parts = [self.label] + ([] if self.default_model else [self.model]) + [self.device, self.optimization]
        return "-".join(parts + ([self.optimizer] if self.optimizer else []))

    @property
    def is_baseline(self) -> bool:
        return self.optimization == BASELINE

    @property
    def process_wide(self) -> bool:
        """Whether this row changes process state for good (``host_allocator``): such rows
        run after all others, so no default row is measured in a changed process."""
        name = self.optimization
        return name in OPTIMIZATIONS and is_process_wide((name,), self.device)

    @property
    def baseline_key(self) -> tuple:
        """Rows sharing this key are compared against the same baseline row."""
        return (self.phase, self.label, self.model, self.device, self.optimizer)

    def settings(self, profile: Profile) -> Settings:
        return settings_of(self.optimization, self.device, profile)


def skip_reason(case: Case, profile: Profile, selected: "Selection | None" = None) -> str | None:
    """Why ``case`` is not measured (None when it is): the optimization's own reason first,
    then an alias (same settings as an earlier row of its group: measured once), then a
    dataset whose rows time the same work (:func:`workload_twin`, when that row is in
    ``selected``: the session's rows)."""
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


# --- end to end: one dataset per kind of data (Profile.end_to_end_datasets) --------------


def data_kind(dataset: str) -> tuple[str, str | None]:
    """What a loader reads for ``dataset``: its modality and declared storage
    (:attr:`hpml.data.DatasetEntry.storage`; None: read from its own files)."""
    return dataset_info(dataset).modality, DATASETS.get(dataset).storage


def describe_kind(dataset: str) -> str:
    modality, storage = data_kind(dataset)
    return f"{modality} data held as {storage}" if storage else f"{modality} data read from its own files"


def end_to_end_stand_in(case: Case, profile: Profile, selected: Selection | None = None) -> str | None:
    """The dataset of :attr:`Profile.end_to_end_datasets` whose end-to-end row stands for
    ``case``'s (same kind of data, :func:`data_kind`; the same model, device, optimization
    and optimizer), when that row is in ``selected`` (None: every row); None when ``case``
    is measured.  Unlike :func:`workload_twin` this claims no equal work (digits never
    flips, CIFAR does): the profile scopes the run, and the skip reason says so."""
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
    """The datasets of :attr:`Profile.end_to_end_datasets` measured end to end in ``case``'s
    stead when no dataset of ``case``'s kind of data is among them (e.g. smoke's in-memory
    arrays, where the loader is a fraction of a percent of a CPU call); empty when ``case``
    is measured: its kind is chosen, or no chosen row with its model, device, optimization and
    optimizer is in ``selected`` (a user who selects only this row gets it measured)."""
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


# --- datasets whose rows time the same work -----------------------------------------------

#: Phases that time a model on pre-built batches: what they compute depends on the data only
#: through its shape, so two datasets with the same input shape, model and batch time the same work.
SHAPE_ONLY_PHASES = ("train", "inference")
#: Phases that read the data (loader, per-sample transform; end to end: then the step): two
#: datasets time the same work there when, besides the above, their registrations declare the
#: same storage (:attr:`hpml.data.DatasetEntry.storage`: how a read split is held), the same
#: transform recipe and the same flip rule (CIFAR-10 and CIFAR-100; digits never flips).
DATA_PHASES = ("load", "preprocess", "end_to_end")

#: The session's rows after -k/-m deselection (a frozenset of :class:`Case`; the plugin collects it).
Selection = frozenset


def _input_shape(case: Case, profile: Profile) -> str:
    info = dataset_info(case.dataset)
    if info.modality == "image":
        side = profile.image_size(info)
        return f"{side}x{side} px"
    return f"{profile.sequence_length(info)} tokens ({profile.model_preset(info)} preset)"


def _workload(case: Case, profile: Profile) -> tuple | None:
    """What a row computes, all but the data's values and the head's width; None where that
    is not known from the registries (another phase, a dataset that declares no storage)."""
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
    """The dataset whose row of ``case``'s phase times the same work as ``case`` (same model,
    optimization, input shape and batch at this profile; the number of classes may differ: it
    only widens the classifier head; in the data phases also the same storage, transform and
    flip rule, see :data:`DATA_PHASES`), when that row comes first and is in ``selected``
    (None: every row of the matrix).  Measuring both would only measure noise.

    First means: the bundled real dataset (digits, on every machine), then registration order.
    """
    if type(case) is not Case:
        return None
    mine = _workload(case, profile)
    if mine is None:
        return None
    order = sorted(list_datasets(), key=lambda name: not DATASETS.get(name).bundled)  # stable
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
#: Where an emulated dtype is measured when not every row is: the cheapest real workload,
#: XLNet's forward pass on Amazon reviews (see :func:`emulated_reason`).
EMULATED_PHASE, EMULATED_DATASET = "inference", "amazon_polarity"


def emulated_reason(case: Case, profile: Profile) -> str | None:
    """Why a row whose settings run bf16 autocast on a CPU without native bf16 is not
    measured (None when it is).

    There torch emulates bf16 and a step runs many times slower than fp32 (the paired
    ``inference:amazon_polarity:cpu:amp`` row says by how much on this machine).  Every
    such row would give the same answer, "a slowdown", at ~10x its baseline's cost, and
    together they were most of the default run on an AVX2 CPU.  So one row measures it, on
    the cheapest real workload: XLNet-tiny's forward pass on Amazon reviews (ResNet-50's took
    58.6 s of a default run: docs/studies/default-runs.md).  The others are skipped naming that
    row.  ``--hpml-emulated`` measures them all."""
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


#: The optimizations (or loader variants) each phase measures, in row order.
PHASE_VARIANTS: dict[str, Callable[[Profile], list[str]]] = {
    "train": train_optimizations,
    "inference": inference_optimizations,
    "load": loading_variants,
    "end_to_end": end_to_end_optimizations,
}


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
    """The earlier row of ``case``'s group whose optimization composes to the same
    Settings on this device (CPU: ``amp_bf16`` is ``amp``), or None."""
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


def marks(case: Case, profile: Profile) -> list[pytest.MarkDecorator]:
    out = []
    if case.device == "cuda":
        out.append(pytest.mark.gpu)
    if case.settings(profile).compile:
        out.append(pytest.mark.slow)  # compilation takes minutes per model on a small CPU
    return out


def params(cases: Iterable[Case], profile: Profile) -> list:
    """``pytest.param`` per case, with its id and marks."""
    return [pytest.param(c, id=c.id, marks=marks(c, profile)) for c in cases]


def models_for(dataset: str, models: Sequence[str] | None) -> list[str]:
    """The models a dataset's rows run: its own by default, else those of ``models`` whose
    input fits it (image models on image datasets, text models on text datasets)."""
    if not models:
        return [dataset_info(dataset).model]
    modality = dataset_info(dataset).modality
    return [m for m in models if model_spec(m).modality == modality]


def check_models(models: Sequence[str]) -> None:
    """``--hpml-models``: every name resolves and fits at least one dataset (else one-line error)."""
    modalities = {dataset_info(d).modality for d in list_datasets()}
    for name in models:
        spec = model_spec(name)
        if spec.modality not in modalities:
            raise HpmlError(f"model {name!r} takes {spec.modality} input and no registered dataset has it")


def train_cases(profile: Profile, datasets: Iterable[str] | None = None,
                models: Sequence[str] | None = None) -> list[Case]:
    return [
        Case("train", d, dev, opt, optimizer, model=m)
        for dev in DEVICES for d in (datasets or list_datasets()) for m in models_for(d, models)
        for opt in train_optimizations(profile) for optimizer in optimizers_for(opt)
    ]


def inference_cases(profile: Profile, datasets: Iterable[str] | None = None,
                    models: Sequence[str] | None = None) -> list[Case]:
    return [
        Case("inference", d, dev, opt, model=m)
        for dev in DEVICES for d in (datasets or list_datasets()) for m in models_for(d, models)
        for opt in inference_optimizations(profile)
    ]


def loading_cases(profile: Profile, datasets: Iterable[str] | None = None,
                  models: Sequence[str] | None = None) -> list[Case]:  # loading runs no model
    datasets = list(datasets or list_datasets())
    return [
        Case("load", d, dev, opt, source=src)
        for dev in DEVICES for d in datasets for src in SOURCES
        for opt in loading_variants(profile)
    ] + [Case("load", d, "cpu", BASELINE, source="real", cold_cache=True) for d in datasets]


def preprocess_cases(profile: Profile, datasets: Iterable[str] | None = None,
                     models: Sequence[str] | None = None) -> list[Case]:  # no model either
    # Per-sample decoding runs on the host whatever the training device: CPU rows only.
    return [Case("preprocess", d, "cpu", BASELINE, source=src) for d in (datasets or list_datasets()) for src in SOURCES]


def end_to_end_cases(profile: Profile, datasets: Iterable[str] | None = None,
                     models: Sequence[str] | None = None) -> list[Case]:
    return [
        Case("end_to_end", d, dev, opt, "sgd", source="real", model=m)
        for dev in DEVICES for d in (datasets or list_datasets()) for m in models_for(d, models)
        for opt in end_to_end_optimizations(profile)
    ]


#: The interleaved comparison rows (``overhead``): hpml's step against a hand-written one with
#: the same optimization, which the hand-written loop knows (bf16 autocast, channels_last).
OVERHEAD_OPTIMIZATIONS = ("baseline", "amp_bf16", "channels_last")
OVERHEAD_DATASET = "cifar10"  # the CIFAR ResNet-50 step: hpml's performance floor


def overhead_cases(profile: Profile, datasets: Iterable[str] | None = None,
                   models: Sequence[str] | None = None) -> list[Case]:
    if datasets is not None and OVERHEAD_DATASET not in datasets:
        return []
    return [Case("overhead", OVERHEAD_DATASET, "cpu", opt, "sgd") for opt in OVERHEAD_OPTIMIZATIONS]
