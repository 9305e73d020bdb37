"""The stored rounds a replay-based method (FedEraser, FedAccum) walks through, with their updates."""

from __future__ import annotations

from dataclasses import dataclass

from fedunlearn.fl.params import Params, sample_weights
from fedunlearn.unlearning.base import UnlearningContext


@dataclass(frozen=True)
class StoredRound:
    round: int
    cids: list[int]  # remaining clients that took part
    updates: list[Params]  # their stored updates U_k^t, in cids order
    weights: list[float]  # p'_k renormalised over cids


def replay_schedule(ctx: UnlearningContext, interval: int) -> list[int]:
    """Rounds t_1 = 1, t_1 + Δt, … (all stored since Δt is a multiple of history.interval)."""
    rounds = ctx.history.rounds()
    return [t for t in rounds if (t - rounds[0]) % interval == 0]


def load_round(ctx: UnlearningContext, round_: int, cids: list[int] | None = None) -> StoredRound:
    """The remaining clients' stored updates of ``round_`` (restricted to ``cids`` when given)."""
    keep = ctx.remaining(round_) if cids is None else cids
    updates = [ctx.history.client_update(round_, c) for c in keep]
    weights = sample_weights([ctx.history.num_examples(round_, c) for c in keep]) if keep else []
    return StoredRound(round_, keep, updates, weights)
