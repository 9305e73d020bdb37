"""The interface every unlearning method implements, and what it is given."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fedunlearn.config import Config
from fedunlearn.data import FederatedData
from fedunlearn.fl.params import Params
from fedunlearn.fl.trainer import ClientTrainer, TrainPlan
from fedunlearn.fl.training import Evaluate, RoundLog, sample_clients
from fedunlearn.history import HistoryStore


@dataclass
class UnlearningContext:
    """One unlearning request: the trained model, its history, who leaves, and the federation.

    ``trainer`` reaches the remaining clients' ClientApps through the same simulation; its cost
    is metered by the caller, so a method reports only what is specific to it in ``info``.
    """

    cfg: Config
    history: HistoryStore
    forget: list[int]
    trainer: ClientTrainer
    trained: Params
    evaluate: Evaluate
    data: FederatedData | None = None  # for methods that compute on the server or the leaving client

    def require_data(self) -> FederatedData:
        if self.data is None:
            raise ValueError("this method needs the federation's data in its UnlearningContext")
        return self.data

    def plan(self, local_epochs: int | None = None) -> TrainPlan:
        return TrainPlan.from_config(self.cfg, local_epochs)

    def remaining(self, round_: int) -> list[int]:
        """Clients that took part in ``round_`` and are not forgotten."""
        gone = set(self.forget)
        return [c for c in self.history.participants(round_) if c not in gone]

    def new_rounds(self, stream: int, first_round: int, count: int) -> list[tuple[int, list[int]]]:
        """Rounds beyond the history (numbered from ``first_round``), each sampling ``fl.fraction_train``
        of the remaining clients as training did; ``stream`` seeds the sampling."""
        gone = set(self.forget)
        remaining = [c for c in range(self.cfg.fl.num_clients) if c not in gone]
        rng = np.random.default_rng([self.cfg.seed, stream])
        return [(first_round + i, sample_clients(remaining, self.cfg.fl.fraction_train, rng)) for i in range(count)]


@dataclass
class UnlearningOutcome:
    params: Params
    rounds: RoundLog = field(default_factory=RoundLog)
    info: dict[str, Any] = field(default_factory=dict)
    extra_client_epochs: int = 0  # client training done outside the ClientTrainer (e.g. PGA's ascent)


class UnlearningMethod(ABC):
    """Removes the forgotten clients' contribution from the trained model."""

    name: ClassVar[str]

    @abstractmethod
    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome: ...
