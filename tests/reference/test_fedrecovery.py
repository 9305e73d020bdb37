"""FedRecovery (Zhang et al., IEEE TIFS 2023): w' = w − Σ_t p_t δ_t + N(0, σ²), δ_t = the round's full aggregate
minus its aggregate without the forgotten clients (weights renormalised), p_t = ‖ΔF_t‖² / Σ_j ‖ΔF_j‖²,
σ = Δ √(2 ln(1.25/β)) / ε; fedunlearn's Δ = sensitivity_scale · ‖Σ_t p_t δ_t‖ (the paper's bound needs
smoothness constants a simulation does not know)."""

import math
from pathlib import Path

import numpy as np
import pytest

from fedunlearn import unlearning
from tests.reference.conftest import TOL, context, flat, random_history


def oracle(h, forget: list[int]) -> np.ndarray:  # type: ignore[no-untyped-def]
    globals_, residuals = [], []
    for t in sorted(h.updates):
        cids = h.participants[t]
        if not cids:
            continue
        n = np.array([h.counts[c] for c in cids], float)
        U = [flat(h.updates[t][c]) for c in cids]
        full = sum(nk / n.sum() * u for nk, u in zip(n, U, strict=True))
        globals_.append(full)
        keep = [i for i, c in enumerate(cids) if c not in forget]
        if len(keep) == len(cids):
            residuals.append(np.zeros_like(full))
            continue
        kept = sum(n[i] / n[keep].sum() * U[i] for i in keep) if keep else 0.0
        residuals.append(full - kept)
    sq = np.array([g @ g for g in globals_])
    return sum(p * r for p, r in zip(sq / sq.sum(), residuals, strict=True))


@pytest.mark.parametrize("forget", [[0], [0, 3]])
def test_residual_correction_and_noise_scale(tmp_path: Path, forget: list[int]) -> None:
    h = random_history(tmp_path, rounds=8, clients=6, seed=11)
    ctx = context(h, forget, None, "unlearning.methods=[fedrecovery]", "unlearning.fedrecovery.sensitivity_scale=0")
    out = unlearning.create("fedrecovery", ctx.cfg).unlearn(ctx)
    correction = oracle(h, forget)
    np.testing.assert_allclose(flat(out.params), flat(ctx.trained) - correction, atol=TOL)
    eps, beta, scale = 10.0, 1e-5, 0.01
    keys = {"epsilon": eps, "beta": beta, "sensitivity_scale": scale}
    ctx = context(
        h,
        forget,
        None,
        "unlearning.methods=[fedrecovery]",
        *(f"unlearning.fedrecovery.{k}={v}" for k, v in keys.items()),
    )
    info = unlearning.create("fedrecovery", ctx.cfg).unlearn(ctx).info
    sigma = scale * np.linalg.norm(correction) * math.sqrt(2 * math.log(1.25 / beta)) / eps
    assert info["sigma"] == pytest.approx(sigma, rel=1e-6)
