"""FUKD (Wu, Zhu, Mitra, 2022): M' = M^E − Σ_t p_u^t U_u^t, p_u^t the forgotten client's FedAvg weight among round
t's participants (n_u / Σ n over them), summed over the rounds it took part in; kd_recover starts from the same M'."""

from pathlib import Path

import numpy as np
import pytest

from fedunlearn.unlearning.methods.kd import subtract_contributions
from tests.reference.conftest import TOL, context, flat, random_history


def oracle(h, trained: np.ndarray, forget: list[int]) -> tuple[np.ndarray, int]:  # type: ignore[no-untyped-def]
    out, count = trained.copy(), 0
    for t in sorted(h.updates):
        cids = h.participants[t]
        total = sum(h.counts[c] for c in cids)
        for c in cids:
            if c in forget:
                out -= h.counts[c] / total * flat(h.updates[t][c])
                count += 1
    return out, count


@pytest.mark.parametrize("forget", [[0], [0, 3], [5]])
def test_subtraction_is_the_weighted_sum_of_the_forgotten_updates(tmp_path: Path, forget: list[int]) -> None:
    h = random_history(tmp_path, rounds=7, clients=6, seed=4)
    ctx = context(h, forget, None, "unlearning.methods=[kd]")
    params, count = subtract_contributions(ctx)
    expected, expected_count = oracle(h, flat(ctx.trained), forget)
    assert count == expected_count
    np.testing.assert_allclose(flat(params), expected, atol=TOL)
