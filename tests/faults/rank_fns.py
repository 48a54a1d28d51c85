"""What the fault catalogue's ranks run (``spawn`` pickles a rank's function by name, so it
lives in a module the ranks can import without the catalogue's own heavy imports)."""

from __future__ import annotations

import itertools
import multiprocessing
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import TensorDataset

from hpml.data.loader import LoaderOptions, make_loader


def hold(env, ready: str) -> None:
    """Hold what a training rank holds -- a named semaphore (as hpml.measure.io's counter)
    and a loader worker sending batches (its pymp-* folder) -- then train until stopped."""
    lock = multiprocessing.get_context("spawn").Lock()  # registered with the resource tracker
    # Forked workers start in a blink; they make their pymp-* folder as spawned ones do.
    multiprocessing.set_start_method("fork", force=True)
    options = LoaderOptions(batch_size=4, num_workers=1, persistent_workers=True)
    loader = make_loader(TensorDataset(torch.zeros(64, 2)), options)
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    next(batches)  # the worker has sent a batch: its folder exists
    Path(ready, f"rank-{env.rank}").touch()
    for batch in batches:
        with lock:
            dist.all_reduce(batch[0].sum())
