"""Training: the optimization catalogue, the step, full runs and measured runs."""

from hpml.train.optimizations import (
    OPTIMIZATIONS,
    OPTIMIZED,
    OptContext,
    Settings,
    compose,
    expand,
    list_optimizations,
)
from hpml.train.state import TrainState, make_state
from hpml.train.step import evaluate, train_step

__all__ = [
    "OPTIMIZATIONS", "OPTIMIZED", "OptContext", "Settings", "compose", "expand",
    "list_optimizations", "TrainState", "make_state", "evaluate", "train_step",
]
