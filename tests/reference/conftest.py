"""Random histories with unequal client weights and partial participation, and a context to run a method on them.

The oracles in this folder are written from the papers' equations and the authors' code in numpy; they import
nothing of fedunlearn's math, only the functions under test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedunlearn.fl.federation import CostMeter, Replies
from fedunlearn.fl.task import ClientUpdate, TrainPlan
from fedunlearn.history import HistoryStore
from fedunlearn.unlearning import UnlearningContext
from tests.conftest import make_config

SHAPES = {"layer1.weight": (4, 3), "layer1.bias": (4,), "layer2.weight": (2, 4)}
TOL = 1e-6


@dataclass
class History:
    store: HistoryStore
    globals: dict[int, dict[str, np.ndarray]]  # M^t, the model round t started from
    updates: dict[int, dict[int, dict[str, np.ndarray]]]  # round → client → U_k^t
    counts: dict[int, int]  # client → samples (unequal)
    participants: dict[int, list[int]] = field(default_factory=dict)


def random_history(root: Path, rounds: int, clients: int, seed: int, participation: float = 0.75) -> History:
    rng = np.random.default_rng(seed)
    store = HistoryStore(root)
    counts = {c: int(rng.integers(5, 60)) for c in range(clients)}
    h = History(store, {}, {}, counts)
    for t in range(1, rounds + 1):
        g = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
        cids = sorted(c for c in range(clients) if (c == 0 and t == 1) or rng.random() < participation)
        ups = {
            c: {k: (rng.normal(size=s) * rng.uniform(0.1, 2)).astype(np.float32) for k, s in SHAPES.items()}
            for c in cids
        }
        store.record_round(t, g, ups, {c: counts[c] for c in cids})
        h.globals[t], h.updates[t], h.participants[t] = g, ups, cids
    return h


def flat(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """The oracles' own flattening: arrays in sorted-name order, float64."""
    return np.concatenate([np.asarray(params[k], np.float64).ravel() for k in sorted(params)])


class ScriptedTrainer:
    """Each client 'trains' by adding a fixed random direction of its own (scaled by the plan's epochs), so the
    replies are known to the oracle; records every call."""

    def __init__(self, clients: int, seed: int) -> None:
        rng = np.random.default_rng(seed + 99)
        self.directions = {
            c: {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()} for c in range(clients)
        }
        self.calls: list[tuple[str, dict[str, np.ndarray], list[int], TrainPlan]] = []

    def train(self, params: Mapping[str, np.ndarray], seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        self.calls.append((group, dict(params), sorted(seeds), plan))
        return Replies(
            ClientUpdate(
                c, {k: (v + self.directions[c][k]).astype(np.float32) for k, v in params.items()}, 10, plan.epochs, 0.0
            )
            for c in sorted(seeds)
        )


def context(h: History, forget: list[int], trainer: object, *overrides: str) -> UnlearningContext:
    cfg = make_config("dataset=synthetic", "dataset.num_samples=400", "dataset.server_samples=20", "fl.num_clients=6",
                      f"forget.clients={forget}", "backdoor.clients=[]", *overrides)  # fmt: skip
    from fedunlearn.data import federated_data

    trained = {k: v + 0.0 for k, v in h.globals[max(h.globals)].items()}
    return UnlearningContext(
        cfg, h.store, forget, CostMeter(trainer), trained, lambda p: (0.0, 0.0), federated_data(cfg)
    )  # type: ignore[arg-type]
