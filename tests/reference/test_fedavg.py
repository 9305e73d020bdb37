"""FedAvg (McMahan et al., 2017): M^{t+1} = Σ_k (n_k / Σ_j n_j) · w_k."""

import numpy as np

from fedunlearn.core.fedavg import fedavg
from fedunlearn.core.federation import Replies
from fedunlearn.core.task import ClientUpdate
from tests.reference.conftest import SHAPES, TOL


def test_fedavg_is_the_sample_weighted_mean_of_the_client_models() -> None:
    rng = np.random.default_rng(1)
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    counts = [3, 41, 17, 8]
    models = [{k: (v + rng.normal(size=v.shape)).astype(np.float32) for k, v in start.items()} for _ in counts]
    new, deltas = fedavg(
        start, Replies(ClientUpdate(c, m, n, 1, 0.0) for c, (m, n) in enumerate(zip(models, counts, strict=True)))
    )
    for k in SHAPES:
        oracle = sum(n * m[k].astype(np.float64) for m, n in zip(models, counts, strict=True)) / sum(counts)
        np.testing.assert_allclose(new[k], oracle, atol=TOL)
        np.testing.assert_allclose(deltas[2][k], models[2][k] - start[k], atol=TOL)
