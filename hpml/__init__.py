"""hpml: a performance test suite for ML training optimizations.

>>> import hpml
>>> "resnet50" in hpml.list_models() and "cifar10" in hpml.list_datasets()
True
>>> "amp" in hpml.list_optimizations()
True
"""

from hpml.data import create_dataset, list_datasets
from hpml.errors import HpmlError
from hpml.models import create_model, list_models
from hpml.train.optimizations import list_optimizations

__version__ = "0.1.0"
__all__ = [
    "HpmlError", "create_dataset", "create_model", "list_datasets", "list_models", "list_optimizations",
    "__version__",
]
