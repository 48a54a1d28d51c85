"""The GPU convergence matrix: ResNet-50 on CIFAR-10/100 and ImageNet, XLNet on Amazon
polarity/full; SGD and Adam; baseline and optimized; from scratch and from user weights.

Generated from the recipe table (``hpml.convergence.list_cases``): a new recipe is a new
test.  Each case skips, with every reason at once, when its data is not under
``--data-dir``, when CUDA is absent, or when it needs weights that ``--hpml-weights`` does
not provide.  A run passes when the mean final top-1 accuracy over ``--hpml-seeds`` seeds
(default 1) reaches the case's target; its records go to ``.benchmarks/convergence/``.
"""

from __future__ import annotations

import pytest

from hpml.convergence import list_cases

from .harness import describe, run_case, seeds_from, skip_reasons

pytestmark = pytest.mark.convergence


@pytest.mark.parametrize("case", list_cases(), ids=lambda case: case.name)
def test_reaches_target(case, request, data_dir, weights_root, convergence_store, tmp_path):
    reasons, weights = skip_reasons(case, data_dir, weights_root)
    if reasons:
        pytest.skip(f"{case.name}: " + "; ".join(reasons))
    result = run_case(
        request.config, case, seeds_from(request.config, default=1), convergence_store,
        device="cuda", data_dir=data_dir, weights=weights, work_dir=tmp_path, progress=True,
    )
    assert result.summary.mean >= case.target.value, (
        f"{describe(result)}; target source: {case.target.source}; records: {[str(p) for p in result.records]}"
    )
