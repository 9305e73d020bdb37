"""Random histories with unequal client weights and partial participation, and a context to run a method on them.

The oracles in this folder are written from the papers' equations and the authors' code in numpy; they import
nothing of fedunlearn's math, only the functions under test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedunlearn.core.federation import CostMeter, Replies
from fedunlearn.core.task import ClientUpdate, TrainPlan
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
    losses: dict[int, dict[int, float]] = field(default_factory=dict)  # round → client → received-model loss


def random_history(
    root: Path, rounds: int, clients: int, seed: int, participation: float = 0.75, losses: bool = False
) -> History:
    """``rounds`` random rounds of ``clients`` with unequal sample counts, each client taking part with chance
    ``participation`` (client 0 in round 1 always); ``losses``: also record each participant's received-model
    loss, falling over the rounds (what Crab's selection reads)."""
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
        stats = {"received_loss": {c: float(3.0 * 0.85**t * rng.uniform(0.8, 1.2)) for c in cids}} if losses else None
        store.record_round(t, g, ups, {c: counts[c] for c in cids}, stats)
        h.globals[t], h.updates[t], h.participants[t] = g, ups, cids
        if stats:
            h.losses[t] = stats["received_loss"]
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


class LinearTrainer:
    """Each client 'trains' as one gradient step on its own quadratic: from w it returns
    w + e·(η (a_c − w) + d_c), e the plan's epochs, a_c and d_c its own random target and drift — so a reply depends
    on the model the client was sent (a method that starts from the wrong model gets another answer), and carries
    the client's own, unequal sample count. Records every call."""

    ETA = 0.3

    def __init__(self, counts: Mapping[int, int], seed: int) -> None:
        rng = np.random.default_rng(seed + 77)
        self.counts = dict(counts)
        self.targets = {c: {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()} for c in counts}
        self.drifts = {c: {k: (0.2 * rng.normal(size=s)).astype(np.float32) for k, s in SHAPES.items()}
                       for c in counts}  # fmt: skip
        self.calls: list[tuple[str, dict[str, np.ndarray], list[int], TrainPlan]] = []

    def update(self, c: int, params: Mapping[str, np.ndarray], epochs: float) -> np.ndarray:
        """The oracle's view of client c's update from ``params`` (flat, float64)."""
        return epochs * (self.ETA * (flat(self.targets[c]) - flat(params)) + flat(self.drifts[c]))

    def train(self, params: Mapping[str, np.ndarray], seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        self.calls.append((group, dict(params), sorted(seeds), plan))
        e, eta = plan.epochs, self.ETA
        return Replies(
            ClientUpdate(
                c,
                {k: (v + e * (eta * (self.targets[c][k] - v) + self.drifts[c][k])).astype(np.float32)
                 for k, v in params.items()},
                self.counts[c], plan.epochs, 0.0,
            )
            for c in sorted(seeds)
        )  # fmt: skip


def unflat(vector: np.ndarray) -> dict[str, np.ndarray]:
    """The oracles' own inverse of ``flat``."""
    out, at = {}, 0
    for k in sorted(SHAPES):
        size = int(np.prod(SHAPES[k]))
        out[k] = vector[at : at + size].reshape(SHAPES[k])
        at += size
    return out


def context(h: History, forget: list[int], trainer: object, *overrides: str) -> UnlearningContext:
    cfg = make_config("dataset=synthetic", "dataset.num_samples=400", "dataset.server_samples=20", "fl.num_clients=6",
                      f"forget.clients={forget}", "backdoor.clients=[]", *overrides)  # fmt: skip
    from fedunlearn.data import federated_data

    trained = {k: v + 0.0 for k, v in h.globals[max(h.globals)].items()}
    return UnlearningContext(
        cfg, h.store, forget, CostMeter(trainer), trained, lambda p: (0.0, 0.0), federated_data(cfg)
    )  # type: ignore[arg-type]


def _softmax_last(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def kl_oracle(prior: dict[str, np.ndarray], now: dict[str, np.ndarray]) -> float:
    """select_round: Σ_tensors KL(softmax(prior) ‖ softmax(now)), softmax over each tensor's last axis."""
    total = 0.0
    for k in prior:
        p, q = _softmax_last(prior[k].astype(np.float64)), _softmax_last(now[k].astype(np.float64))
        total += float(np.sum(p * (np.log(p) - np.log(q))))
    return total


def cosine_oracle(aggregate: dict[str, np.ndarray], local: dict[str, np.ndarray]) -> float:
    """select_client_in_round: mean over weight tensors (ndim > 1) of the mean row-wise cosine similarity."""
    values = []
    for k in aggregate:
        if aggregate[k].ndim > 1:
            a, b = aggregate[k].astype(np.float64), local[k].astype(np.float64)
            values.append(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))
    return float(np.mean(values))
