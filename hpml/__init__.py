"""hpml: a performance test suite for ML training optimizations."""

from hpml.errors import HpmlError
from hpml.models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["HpmlError", "create_model", "list_models", "__version__"]
