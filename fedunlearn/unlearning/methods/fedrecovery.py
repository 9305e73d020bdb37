"""FedRecovery (Zhang et al., TIFS 2023): subtract the weighted residuals, add Gaussian noise; no retraining.

w' = M^{E+1} − Σ_t p_t δ_t + z, p_t = ‖ΔF_t‖²/Σ_j ‖ΔF_j‖², z ~ N(0, σ²I), σ = Δ√(2 ln(1.25/β))/ε.
The paper's bound on the sensitivity Δ needs smoothness constants a simulation does not know; fedunlearn uses
Δ = sensitivity_scale · ‖Σ_t p_t δ_t‖ and reports σ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fedunlearn.config import Config, spec
from fedunlearn.core.params import flatten, sample_weights, unflatten
from fedunlearn.seeds import declare, rng
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome, require_every_round
from fedunlearn.unlearning.registry import register
from fedunlearn.unlearning.residual import gaussian_sigma, round_residual, round_weights

NOISE = declare("gaussian noise", 6)  # the Gaussian noise added to the model (SIFU's too)


@dataclass
class FedRecoveryHParams:
    epsilon: float = spec(gt=0.0)
    beta: float = spec(gt=0.0, le=1.0)
    sensitivity_scale: float = spec(ge=0.0)  # Δ = scale · ‖Σ_t p_t δ_t‖


@register("fedrecovery")
class FedRecovery(UnlearningMethod[FedRecoveryHParams]):
    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_every_round(cfg, self.name)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        t0 = time.perf_counter()
        p = self.hparams
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
        weights_t = round_weights(global_updates)
        trained = flatten(ctx.trained)
        correction = np.zeros_like(trained)
        for pt, r in zip(weights_t, residuals, strict=True):
            if r is not None:
                correction += pt * r
        sigma = gaussian_sigma(p.sensitivity_scale * float(np.linalg.norm(correction)), p.epsilon, p.beta)
        noise = rng(ctx.cfg.seed, NOISE).normal(0.0, sigma, trained.size)
        params = {**ctx.trained, **unflatten(trained - correction + noise, ctx.trained)}
        outcome = UnlearningOutcome(params, info={"sigma": sigma, "correction_norm": float(np.linalg.norm(correction))})
        ctx.step(outcome.rounds, self.name, 1, 1, params, t0, [])
        return outcome
