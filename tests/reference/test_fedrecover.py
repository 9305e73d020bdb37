"""FedRecover (Cao et al., IEEE S&P 2023; no official code): the compact L-BFGS Hessian-vector product, the
schedule of exact rounds (warm-up T_w, every T_c-th, last T_f) and the estimated updates ĝ = U − H̃ (M̂ − M)
(clients return updates, ≈ −lr·gradients, hence the sign), replayed in numpy with unequal client weights."""

from pathlib import Path

import numpy as np
import pytest

from fedunlearn import unlearning
from fedunlearn.core.federation import Replies
from fedunlearn.core.task import ClientUpdate
from fedunlearn.unlearning.lbfgs import lbfgs_hvp
from tests.reference.conftest import SHAPES, TOL, context, flat, random_history


def bfgs(S: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Explicit BFGS from B₀ = σI, σ = y_lastᵀs_last / s_lastᵀs_last, pairs applied oldest first."""
    B = np.eye(S.shape[0]) * (Y[:, -1] @ S[:, -1]) / (S[:, -1] @ S[:, -1])
    for s, y in zip(S.T, Y.T, strict=True):
        Bs = B @ s
        B = B - np.outer(Bs, Bs) / (s @ Bs) + np.outer(y, y) / (y @ s)
    return B


def test_compact_lbfgs_product_equals_explicit_bfgs() -> None:
    rng = np.random.default_rng(9)
    for pairs in (1, 2, 4):
        A = rng.normal(size=(6, 6))
        S = rng.normal(size=(6, pairs))
        Y = (A @ A.T + 6 * np.eye(6)) @ S  # positive curvature
        v = rng.normal(size=6)
        np.testing.assert_allclose(lbfgs_hvp(S, Y, v), bfgs(S, Y) @ v, atol=TOL)


class CurvedTrainer:
    """Client k's exact update in round t is U_k^t − ½(M̂ − M^t): every pair (ΔW, ΔG) = (s, ½s) has positive
    curvature, so each client's buffer fills during warm-up."""

    def __init__(self, h) -> None:  # type: ignore[no-untyped-def]
        self.h = h
        self.rounds: list[int] = []

    def train(self, params, seeds, plan, group):  # type: ignore[no-untyped-def]
        t = int(group.split("-")[1])
        self.rounds.append(t)
        return Replies(
            ClientUpdate(c, {k: params[k] + self.h.updates[t][c][k] - 0.5 * (params[k] - self.h.globals[t][k])
                             for k in SHAPES}, 10, plan.epochs, 0.0)
            for c in sorted(seeds)
        )  # fmt: skip


@pytest.mark.parametrize(("warmup", "period", "final"), [(3, 4, 2), (4, 5, 1)])
def test_replay_with_estimated_updates(tmp_path: Path, warmup: int, period: int, final: int) -> None:
    E, size = 12, 2
    h = random_history(tmp_path, rounds=E, clients=5, seed=10, participation=1.0)
    trainer = CurvedTrainer(h)
    ctx = context(h, [0], trainer, "unlearning.methods=[fedrecover]", f"unlearning.fedrecover.warmup_rounds={warmup}",
                  f"unlearning.fedrecover.correction_period={period}", f"unlearning.fedrecover.final_rounds={final}",
                  f"unlearning.fedrecover.buffer_size={size}", "unlearning.fedrecover.tau_factor=1e9")  # fmt: skip
    out = unlearning.create("fedrecover", ctx.cfg).unlearn(ctx)
    exact = [t for t in range(1, E + 1) if t <= warmup or t % period == 0 or t > E - final]
    assert sorted(set(trainer.rounds)) == exact  # the paper's schedule; no abnormal round with τ this large
    model = flat(h.globals[1])
    pairs: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for t in range(1, E + 1):
        keep = [c for c in h.participants[t] if c != 0]
        shift = model - flat(h.globals[t])
        n = np.array([h.counts[c] for c in keep], float)
        step = np.zeros_like(model)
        for pk, c in zip(n / n.sum(), keep, strict=True):
            U = flat(h.updates[t][c])
            if t in exact:
                g = U - 0.5 * shift
                if shift @ shift > 0:
                    pairs.setdefault(c, []).append((shift, U - g))
                    pairs[c] = pairs[c][-size:]
            else:
                S = np.stack([s for s, _ in pairs[c]], axis=1)
                Y = np.stack([y for _, y in pairs[c]], axis=1)
                g = U - bfgs(S, Y) @ shift
            step += pk * g
        model = model + step
    np.testing.assert_allclose(flat(out.params), model, atol=1e-5)
    assert out.info["exact_updates"] == len(exact) * 4 and out.info["retrain_updates"] == E * 4


@pytest.mark.parametrize(("scope", "quantile", "factor"), [("global", 0.999999, 1.0), ("global", 0.9, 1.0),
                                                          ("round", 0.99, 1.2)])  # fmt: skip
def test_abnormal_estimates_are_computed_exactly(tmp_path: Path, scope: str, quantile: float, factor: float) -> None:
    """Abnormality fixing: an estimate with a coordinate above τ is computed by its client; the paper's τ is
    max_t τ_t, τ_t the (1 − α) quantile of round t's stored updates (fedunlearn: of their absolute values);
    ``round`` uses the replayed round's own τ_t. The exact update also refreshes the client's curvature pairs."""
    E, size, warmup, period, final = 12, 2, 3, 6, 1
    h = random_history(tmp_path, rounds=E, clients=5, seed=11, participation=1.0)
    trainer = CurvedTrainer(h)
    ctx = context(h, [0], trainer, "unlearning.methods=[fedrecover]", f"unlearning.fedrecover.warmup_rounds={warmup}",
                  f"unlearning.fedrecover.correction_period={period}", f"unlearning.fedrecover.final_rounds={final}",
                  f"unlearning.fedrecover.buffer_size={size}", f"unlearning.fedrecover.tau_scope={scope}",
                  f"unlearning.fedrecover.tau_quantile={quantile}",
                  f"unlearning.fedrecover.tau_factor={factor}")  # fmt: skip
    out = unlearning.create("fedrecover", ctx.cfg).unlearn(ctx)
    keep = {t: [c for c in h.participants[t] if c != 0] for t in range(1, E + 1)}
    tau_t = {t: np.quantile(np.abs(np.concatenate([flat(h.updates[t][c]) for c in keep[t]])), quantile)
             for t in keep}  # fmt: skip
    model = flat(h.globals[1])
    pairs: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    abnormal = 0
    for t in range(1, E + 1):
        scheduled = t <= warmup or t % period == 0 or t > E - final
        tau = factor * (max(tau_t.values()) if scope == "global" else tau_t[t])
        shift = model - flat(h.globals[t])
        n = np.array([h.counts[c] for c in keep[t]], float)
        step = np.zeros_like(model)
        for pk, c in zip(n / n.sum(), keep[t], strict=True):
            U = flat(h.updates[t][c])
            g = None
            if not scheduled:
                S = np.stack([s for s, _ in pairs[c]], axis=1)
                Y = np.stack([y for _, y in pairs[c]], axis=1)
                g = U - bfgs(S, Y) @ shift
                if np.max(np.abs(g)) > tau:
                    abnormal, g = abnormal + 1, None
            if g is None:  # computed by the client: its exact update, and a new curvature pair
                g = U - 0.5 * shift
                if shift @ shift > 0:
                    pairs[c] = [*pairs.get(c, []), (shift, U - g)][-size:]
            step += pk * g
        model = model + step
    np.testing.assert_allclose(flat(out.params), model, atol=1e-5)
    assert out.info["abnormal_updates"] == abnormal
    assert (abnormal > 0) == (quantile < 0.99999 or scope == "round"), abnormal
