"""Checks against the user's real files (``--data-dir`` / ``$HPML_DATA_DIR``) and a real GPU.

Without a data directory or CUDA these skip, each with its reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpml.data import create_dataset, dataset_info, list_datasets
from hpml.data.loader import DeviceLoader
from hpml.errors import HpmlError


@pytest.mark.parametrize("name", list_datasets())
def test_real_files_load(name: str, data_dir: Path | None) -> None:
    info = dataset_info(name)
    if data_dir is None and name != "digits":
        pytest.skip("no --data-dir / $HPML_DATA_DIR given: real files are not available")
    small = dict(image_size=64) if name == "imagenet" else dict(seq_len=64) if info.modality == "text" else {}
    try:
        ds = create_dataset(name, "test", data_dir=data_dir, synthetic=False, size=8, **small)
    except HpmlError as err:
        if "not found under" in str(err):
            pytest.skip(str(err))
        raise
    x, y = ds[7]
    assert not ds.synthetic and len(ds) == 8 and 0 <= y < info.num_classes
    assert x.dtype == (torch.float32 if info.modality == "image" else torch.int64)


@pytest.mark.gpu
def test_device_loader_on_cuda_matches_cpu() -> None:
    """All randomness is drawn on the CPU, so CUDA batches equal the CPU ones."""
    ds = create_dataset("cifar10", "train", size=64)
    cpu = list(DeviceLoader(ds, 16, "cpu", seed=1))
    cuda = list(DeviceLoader(ds, 16, "cuda", seed=1))
    for (xc, yc), (xg, yg) in zip(cpu, cuda):
        assert xg.is_cuda and yg.is_cuda
        assert torch.equal(yc, yg.cpu()) and torch.allclose(xc, xg.cpu(), atol=1e-5)
