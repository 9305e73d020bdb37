"""FedRecover (Cao et al., IEEE S&P 2023): replay training from M^1 with client updates *estimated* as
ĝ_k = U_k^t + H̃_k (M̂^t − M^t) (L-BFGS from per-client buffers), computed exactly by the clients only in
warm-up, periodic correction, abnormal (a coordinate above τ) and final-tuning rounds.

Clients return model updates (≈ −lr·gradient), not gradients, so the curvature pairs are (ΔW, −ΔG) and the
estimate is ĝ_k = U_k^t − H̃_k (M̂^t − M^t): the same method with the update's sign.

Abnormality fixing, as the paper defines it (§ "Optimization strategies"): an estimate with a coordinate above τ is
computed exactly by its client instead; τ_t is the value that at most a share α of the coordinates of round t's
stored updates (the remaining participants') exceed, and τ = max_t τ_t over the stored rounds
(``tau_scope: global``). The paper compares coordinates with τ; fedunlearn compares their absolute values (a large
negative coordinate is as abnormal). The paper's α is not stated; ``tau_quantile`` = 1 − α defaults to 1 − 10⁻⁶,
as two public re-implementations set it. ``tau_scope: round`` (with ``tau_factor``) is fedunlearn's own looser rule,
τ = factor × the round's own quantile. There is no official code."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fedunlearn.config import Config, ConfigError, spec
from fedunlearn.core.params import flatten, sample_weights, unflatten
from fedunlearn.seeds import Stream, client_seed
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome, require_every_round
from fedunlearn.unlearning.lbfgs import lbfgs_hvp
from fedunlearn.unlearning.registry import register


@dataclass
class FedRecoverHParams:
    warmup_rounds: int = spec(ge=1)  # T_w (must exceed buffer_size)
    correction_period: int = spec(ge=1)  # T_c
    final_rounds: int = spec(ge=0)  # T_f
    buffer_size: int = spec(ge=1)  # s
    tau_quantile: float = spec(ge=0.0, le=1.0)  # 1 − α: τ_t is this quantile of |U| over round t's stored updates
    tau_factor: float = spec(gt=0.0)  # τ = factor × (max_t τ_t, or the round's τ_t); the paper: 1
    tau_scope: str = spec(choices=("global", "round"))  # global: τ = max over rounds (the paper); round: τ_t


class PairBuffer:
    """The latest ``size`` curvature pairs (ΔW, ΔG) of one client."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.s: list[np.ndarray] = []
        self.y: list[np.ndarray] = []

    def add(self, s: np.ndarray, y: np.ndarray) -> None:
        if float(s @ s) == 0.0 or float(y @ s) <= 0.0:  # no information, or breaks positive curvature
            return
        self.s, self.y = [*self.s, s][-self.size :], [*self.y, y][-self.size :]

    def __len__(self) -> int:
        return len(self.s)

    def hvp(self, v: np.ndarray) -> np.ndarray:
        return lbfgs_hvp(np.stack(self.s, axis=1), np.stack(self.y, axis=1), v)


@register("fedrecover")
class FedRecover(UnlearningMethod[FedRecoverHParams]):
    def _tau_t(self, ctx: UnlearningContext, t: int, stored: dict[int, np.ndarray] | None = None) -> float:
        """τ_t: the ``tau_quantile`` of |coordinates| of round t's stored updates of the remaining participants."""
        cids = ctx.remaining(t)
        if not cids:
            return 0.0
        values = stored if stored is not None else {c: flatten(ctx.history.client_update(t, c)) for c in cids}
        return float(np.quantile(np.abs(np.concatenate([values[c] for c in cids])), self.hparams.tau_quantile))

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_every_round(cfg, self.name)
        if self.hparams.warmup_rounds <= self.hparams.buffer_size:
            raise ConfigError("unlearning.fedrecover.warmup_rounds", "must exceed unlearning.fedrecover.buffer_size")

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p = self.hparams
        rounds = ctx.history.rounds()
        last = len(rounds)
        plan = ctx.plan()
        params = ctx.history.global_model(rounds[0])
        tau_global = p.tau_factor * max((self._tau_t(ctx, t) for t in rounds), default=0.0)
        buffers: dict[int, PairBuffer] = {}
        exact, needed, abnormal = 0, 0, 0
        outcome = UnlearningOutcome(params)
        for index, t in enumerate(rounds, start=1):
            t0 = time.perf_counter()
            cids = ctx.remaining(t)
            needed += len(cids)
            if not cids:
                continue
            current = flatten(params)
            shift = current - flatten(ctx.history.global_model(t))
            stored = {c: flatten(ctx.history.client_update(t, c)) for c in cids}
            scheduled = index <= p.warmup_rounds or index % p.correction_period == 0 or index > last - p.final_rounds
            estimates: dict[int, np.ndarray] = {}
            if not scheduled:
                tau = tau_global if p.tau_scope == "global" else p.tau_factor * self._tau_t(ctx, t, stored)
                for c in cids:
                    buf = buffers.get(c)
                    if buf is None or len(buf) == 0:
                        continue
                    g = stored[c] - buf.hvp(shift)
                    if float(np.max(np.abs(g))) > tau:
                        abnormal += 1
                        continue
                    estimates[c] = g
            need = [c for c in cids if c not in estimates]
            replies = None
            if need:
                seeds = {c: client_seed(ctx.cfg.seed, Stream.TRAINING, t, c) for c in need}
                replies = ctx.clients.train(params, seeds, plan, group=f"{self.name}-{t}")
                for reply in replies:
                    g = flatten(reply.params) - current
                    estimates[reply.cid] = g
                    buffers.setdefault(reply.cid, PairBuffer(p.buffer_size)).add(shift, stored[reply.cid] - g)
                exact += len(need)
            used = sorted(estimates)
            weights = sample_weights([ctx.history.num_examples(t, c) for c in used])
            step = sum(w * estimates[c] for w, c in zip(weights, used, strict=True))
            params = {**params, **unflatten(current + step, params)}
            ctx.step(outcome.rounds, self.name, index, last, params, t0, used, replies, unit="round")
        outcome.params = params
        outcome.info = {
            "tau": tau_global if p.tau_scope == "global" else None,
            "exact_updates": exact,
            "retrain_updates": needed,
            "exact_share": exact / needed if needed else 0.0,
            "abnormal_updates": abnormal,
        }
        return outcome
