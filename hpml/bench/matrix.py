"""The benchmark matrix, generated from the registries: a :class:`Case` per phase, dataset, device and
optimization; a phase measures what each optimization declares it affects (skips: :mod:`hpml.bench.skips`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import pytest

from hpml.bench.profiles import Profile
from hpml.data import dataset_info, list_datasets
from hpml.errors import HpmlError
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
)

DEVICES = ("cpu", "cuda")
OPTIMIZERS = ("sgd", "adam")
#: Data sources of the phases that read data: the real on-disk format, or the synthetic twin.
SOURCES = ("real", "synthetic")

BASELINE = "baseline"
#: Phases that run no model: their rows have ``model`` None (hpml.results.phase_names).
MODEL_FREE_PHASES = phase_names(runs_model=False)


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


@dataclass(frozen=True)
class Case:
    """One benchmark row."""

    phase: str  # train | load | preprocess | inference | end_to_end
    dataset: str
    device: str
    optimization: str  # a registered optimization, or a loader knob (load phase)
    optimizer: str | None = None  # phases that train: sgd | adam
    source: str = "synthetic"  # real (on-disk format) | synthetic (twin)
    model: str | None = None  # phases that run a model; None: the dataset's default (resnet50, xlnet)
    cold_cache: bool = False  # load rows: the dataset files are evicted from the page cache before each call

    def __post_init__(self) -> None:
        runs_model = self.phase not in MODEL_FREE_PHASES
        model = (self.model or dataset_info(self.dataset).model) if runs_model else None
        object.__setattr__(self, "model", model)

    @property
    def default_model(self) -> bool:
        """Whether the row runs its dataset's own model (ids and groups then leave the model out)."""
        return self.model is None or self.model == dataset_info(self.dataset).model

    @property
    def label(self) -> str:
        """The dataset as recorded, with ``-synthetic`` or ``-coldcache`` so case keys stay distinct."""
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
        """Whether this row changes process state for good (``host_allocator``): fresh processes."""
        name = self.optimization
        return name in OPTIMIZATIONS and is_process_wide((name,), self.device)

    @property
    def baseline_key(self) -> tuple:
        """Rows sharing this key are compared against the same baseline row."""
        return (self.phase, self.label, self.model, self.device, self.optimizer)

    def settings(self, profile: Profile) -> Settings:
        return settings_of(self.optimization, self.device, profile)


#: The optimizations (or loader variants) each phase measures, in row order.
PHASE_VARIANTS: dict[str, Callable[[Profile], list[str]]] = {
    "train": train_optimizations,
    "inference": inference_optimizations,
    "load": loading_variants,
    "end_to_end": end_to_end_optimizations,
}


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
    """The models a dataset's rows run: its own by default, else those of ``models`` that fit its modality."""
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
                  models: Sequence[str] | None = None) -> list[Case]:
    datasets = list(datasets or list_datasets())
    return [
        Case("load", d, dev, opt, source=src)
        for dev in DEVICES for d in datasets for src in SOURCES
        for opt in loading_variants(profile)
    ] + [Case("load", d, "cpu", BASELINE, source="real", cold_cache=True) for d in datasets]


def preprocess_cases(profile: Profile, datasets: Iterable[str] | None = None,
                     models: Sequence[str] | None = None) -> list[Case]:
    # Per-sample decoding runs on the host whatever the training device: CPU rows only.
    return [Case("preprocess", d, "cpu", BASELINE, source=src) for d in (datasets or list_datasets()) for src in SOURCES]


def end_to_end_cases(profile: Profile, datasets: Iterable[str] | None = None,
                     models: Sequence[str] | None = None) -> list[Case]:
    return [
        Case("end_to_end", d, dev, opt, "sgd", source="real", model=m)
        for dev in DEVICES for d in (datasets or list_datasets()) for m in models_for(d, models)
        for opt in end_to_end_optimizations(profile)
    ]


#: The ``overhead`` rows: hpml's step against a hand-written one, with optimizations both know.
OVERHEAD_OPTIMIZATIONS = ("baseline", "amp_bf16", "channels_last")
OVERHEAD_DATASET = "cifar10"  # the CIFAR ResNet-50 step: hpml's performance floor


def overhead_cases(profile: Profile, datasets: Iterable[str] | None = None,
                   models: Sequence[str] | None = None) -> list[Case]:
    if datasets is not None and OVERHEAD_DATASET not in datasets:
        return []
    return [Case("overhead", OVERHEAD_DATASET, "cpu", opt, "sgd") for opt in OVERHEAD_OPTIMIZATIONS]
