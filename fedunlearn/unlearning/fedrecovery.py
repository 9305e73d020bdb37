"""FedRecovery (Zhang et al., TIFS 2023): subtract the weighted residuals, add Gaussian noise; no retraining.

w' = M^{E+1} − Σ_t p_t δ_t + z, p_t = ‖ΔF_t‖²/Σ_j ‖ΔF_j‖², z ~ N(0, σ²I), σ = Δ√(2 ln(1.25/β))/ε.
The paper's bound on the sensitivity Δ needs smoothness constants a simulation does not know; fedunlearn uses
Δ = sensitivity_scale · ‖Σ_t p_t δ_t‖ and reports σ.
"""

from __future__ import annotations

import numpy as np

from fedunlearn.fl.params import flatten, sample_weights, unflatten
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register
from fedunlearn.unlearning.residual import gaussian_sigma, round_residual, round_weights

NOISE_STREAM = 5


@register
class FedRecovery(UnlearningMethod):
    name = "fedrecovery"

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        cfg = ctx.cfg.unlearning.fedrecovery
        gone = set(ctx.forget)
        global_updates: list[np.ndarray] = []
        residuals: list[np.ndarray | None] = []
        for t in ctx.history.rounds():
            cids = ctx.history.participants(t)
            if not cids:
                continue
            updates = [flatten(ctx.history.client_update(t, c)) for c in cids]
            weights = sample_weights([ctx.history.num_examples(t, c) for c in cids])
            global_updates.append(np.sum([w * u for w, u in zip(weights, updates, strict=True)], axis=0))
            forgotten = [c in gone for c in cids]
            residuals.append(round_residual(updates, weights, forgotten) if any(forgotten) else None)
        p = round_weights(global_updates)
        trained = flatten(ctx.trained)
        correction = np.zeros_like(trained)
        for pt, r in zip(p, residuals, strict=True):
            if r is not None:
                correction += pt * r
        sigma = gaussian_sigma(cfg.sensitivity_scale * float(np.linalg.norm(correction)), cfg.epsilon, cfg.beta)
        noise = np.random.default_rng([ctx.cfg.seed, NOISE_STREAM]).normal(0.0, sigma, trained.size)
        params = {**ctx.trained, **unflatten(trained - correction + noise, ctx.trained)}
        accuracy, loss = ctx.evaluate(params)
        outcome = UnlearningOutcome(params, info={"sigma": sigma, "correction_norm": float(np.linalg.norm(correction))})
        outcome.rounds.add(self.name, 1, 1, accuracy, loss, 0.0, [])
        return outcome
