"""CIFAR-10 and CIFAR-100 from the python-pickle batches, held as one uint8 ``[N, 3, 32, 32]`` tensor.

Pickles can run code, so an unpickler that rebuilds only numpy arrays reads them (torchvision's
reader would also re-check MD5s on every load)."""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpml.data import register_dataset
from hpml.data.base import DataRequest, DatasetInfo, TensorImageDataset, find_root, take_first
from hpml.data.transforms import cifar_transform
from hpml.errors import HpmlError, squeezed_message

_PIXELS = 3 * 32 * 32  # bytes per CIFAR image

CIFAR10 = DatasetInfo(
    name="cifar10",
    modality="image",
    num_classes=10,
    model="resnet50",
    train_size=50_000,
    test_size=10_000,
    image_size=32,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    files="cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
    source="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract into data_dir)",
)
CIFAR100 = DatasetInfo(
    name="cifar100",
    modality="image",
    num_classes=100,
    model="resnet50",
    train_size=50_000,
    test_size=10_000,
    image_size=32,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    files="cifar-100-python/{train,test,meta}",
    source="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (extract into data_dir)",
)

# What a CIFAR batch may reference: numpy array/dtype reconstruction, and the codec call
# Python 3 uses to store bytes in protocol-2 pickles.  Resolved from live objects so the
# deprecated ``numpy.core`` path named in old pickles is never imported.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
    # an empty array's data: protocol 2 stores b"" as a call of bytes()
    ("__builtin__", "bytes"): bytes,
    ("builtins", "bytes"): bytes,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def read_batch(path: Path) -> dict[bytes, Any]:
    """One CIFAR pickle batch as the dict ``pickle.load(f, encoding="bytes")`` would give."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise HpmlError(f"missing CIFAR batch {path}") from None
    except Exception as err:  # truncated/corrupt pickles raise many types
        raise HpmlError(f"corrupt CIFAR batch {path}: {type(err).__name__}: {squeezed_message(err)}") from None
    if not isinstance(batch, dict):
        raise HpmlError(f"corrupt CIFAR batch {path}: holds a {type(batch).__name__}, not a dict")
    return batch


def decode_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(uint8[N, 3, 32, 32], int64[N])`` from one batch file, checked for shape and range."""
    batch = read_batch(path)
    data, labels = batch.get(b"data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or labels is None:
        found = ", ".join(repr(k) for k in batch)
        raise HpmlError(f"corrupt CIFAR batch {path}: needs b'data' and {label_key!r}, found {found}")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise HpmlError(
            f"corrupt CIFAR batch {path}: data is {data.dtype}{list(data.shape)}, "
            f"expected uint8[N, {_PIXELS}]"
        )
    y = np.asarray(labels)
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        # strings would fail to convert with a traceback; floats would be truncated
        raise HpmlError(f"corrupt CIFAR batch {path}: {label_key!r} holds {y.dtype} values, expected integers")
    if not len(data):
        raise HpmlError(f"corrupt CIFAR batch {path}: it holds no images")
    y = y.astype(np.int64)
    if y.shape != (len(data),):
        raise HpmlError(f"corrupt CIFAR batch {path}: {len(y)} labels for {len(data)} images")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise HpmlError(f"corrupt CIFAR batch {path}: labels outside 0..{num_classes - 1}")
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(y)


def _load(request: DataRequest, folder: str, files: list[str], label_key: bytes) -> TensorImageDataset:
    info = request.info
    root = find_root(request.data_dir, folder, lambda r: (r / files[0]).is_file(), info)
    parts = [decode_batch(root / name, label_key, info.num_classes) for name in files]
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    n = take_first(len(labels), request.size, root)
    assert request.transform is not None
    return TensorImageDataset(
        images[:n].clone() if n < len(labels) else images,
        labels[:n].clone() if n < len(labels) else labels,
        info,
        request.split,
        synthetic=False,
        augment=request.augment,
        transform=request.transform,
        image_size=request.image_size,
    )


#: Both CIFARs are decoded at construction into one uint8 tensor (:func:`_load`), so a sample
#: costs the same indexing and transform whatever its values or class count.
STORAGE = "uint8 3x32x32 in memory"


@register_dataset(CIFAR10, transform=cifar_transform, storage=STORAGE)
def cifar10(request: DataRequest) -> TensorImageDataset:
    files = [f"data_batch_{i}" for i in range(1, 6)] if request.split == "train" else ["test_batch"]
    return _load(request, "cifar-10-batches-py", files, b"labels")


@register_dataset(CIFAR100, transform=cifar_transform, storage=STORAGE)
def cifar100(request: DataRequest) -> TensorImageDataset:
    return _load(request, "cifar-100-python", [request.split], b"fine_labels")
