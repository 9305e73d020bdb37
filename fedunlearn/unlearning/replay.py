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
    num_examples: list[int]

    @property
    def weights(self) -> list[float]:
        """p'_k renormalised over cids."""
        return sample_weights(self.num_examples) if self.cids else []

    def restrict(self, cids: list[int]) -> StoredRound:
        """The same round limited to ``cids`` (e.g. the clients that answered a calibration round)."""
        keep = [i for i, c in enumerate(self.cids) if c in set(cids)]
        return StoredRound(
            self.round,
            [self.cids[i] for i in keep],
            [self.updates[i] for i in keep],
            [self.num_examples[i] for i in keep],
        )


def replay_schedule(ctx: UnlearningContext, interval: int, alignment: str = "start") -> list[int]:
    """``start``: rounds t_1 = 1, 1 + Δt, 1 + 2Δt, … (stored: Δt is a multiple of history.interval);
    ``end``: rounds Δt, 2Δt, … (the last of each block of Δt rounds)."""
    rounds = ctx.history.rounds()
    offset = 0 if alignment == "start" else interval - 1
    return [t for t in rounds if (t - rounds[0]) % interval == offset]


def load_round(ctx: UnlearningContext, round_: int) -> StoredRound:
    """The remaining clients' stored updates of ``round_``."""
    keep = ctx.remaining(round_)
    updates = [ctx.history.client_update(round_, c) for c in keep]
    return StoredRound(round_, keep, updates, [ctx.history.num_examples(round_, c) for c in keep])
