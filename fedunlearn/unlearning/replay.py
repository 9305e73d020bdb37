"""The stored rounds a replay-based method (FedEraser, FedAccum) walks through, with their updates."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from fedunlearn.core.params import Params, sample_weights
from fedunlearn.unlearning.base import UnlearningContext


class LazyUpdates(Sequence[Params]):
    """A round's stored updates, each read from the history when it is used: a step that streams over them
    (``weighted_sum``, ``calibrated_step``) holds one client's update at a time, however large the round."""

    def __init__(self, cids: list[int], read: Callable[[int], Params]) -> None:
        self._cids, self._read = cids, read

    def __len__(self) -> int:
        return len(self._cids)

    @overload
    def __getitem__(self, i: int) -> Params: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Params]: ...
    def __getitem__(self, i: int | slice) -> Params | Sequence[Params]:
        if isinstance(i, slice):
            return LazyUpdates(self._cids[i], self._read)
        return self._read(self._cids[i])

    def __iter__(self) -> Iterator[Params]:
        return (self._read(c) for c in self._cids)


@dataclass(frozen=True)
class StoredRound:
    round: int
    cids: list[int]  # remaining clients that took part
    num_examples: list[int]
    read: Callable[[int], Params]  # a client's stored update U_k^t, from the history

    @property
    def updates(self) -> LazyUpdates:
        """The clients' stored updates in cids order, each read when it is used."""
        return LazyUpdates(self.cids, self.read)

    @property
    def weights(self) -> list[float]:
        """p'_k renormalised over cids."""
        return sample_weights(self.num_examples) if self.cids else []

    def restrict(self, cids: list[int]) -> StoredRound:
        """The same round limited to ``cids`` (e.g. the clients that answered a calibration round)."""
        keep = [i for i, c in enumerate(self.cids) if c in set(cids)]
        return StoredRound(self.round, [self.cids[i] for i in keep], [self.num_examples[i] for i in keep], self.read)


def replay_schedule(ctx: UnlearningContext, interval: int, alignment: str = "start") -> list[int]:
    """``start``: rounds t_1 = 1, 1 + Δt, 1 + 2Δt, … (stored: Δt is a multiple of history.interval);
    ``end``: rounds Δt, 2Δt, … (the last of each block of Δt rounds)."""
    rounds = ctx.history.rounds()
    offset = 0 if alignment == "start" else interval - 1
    return [t for t in rounds if (t - rounds[0]) % interval == offset]


def load_round(ctx: UnlearningContext, round_: int) -> StoredRound:
    """The remaining clients' stored updates of ``round_``, read one at a time as they are used."""
    keep = ctx.remaining(round_)
    sizes = [ctx.history.num_examples(round_, c) for c in keep]
    return StoredRound(round_, keep, sizes, lambda c: ctx.history.client_update(round_, c))
