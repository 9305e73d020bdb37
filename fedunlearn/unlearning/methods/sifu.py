"""SIFU (Fraboni, Van Waerebeke, Scaman, Vidal, Kameni, Lorenzi; arXiv 2211.11656, AISTATS 2024): roll back to the
last global model whose sensitivity to the forgotten clients is within the bound, add Gaussian noise, retrain.

As the authors' code does it (Accenture/Labs-Federated-Learning, branch SIFU @ 9a5529b, ``FL/server.py``,
``FL/privacy.py``), with λ = 0 (their default, no contraction) and server lr 1: each client's sensitivity grows by
p/(1 − p) · ‖θ^{t+1} − θ_c^{t+1}‖ in every round it takes part in (θ^{t+1} the new aggregate, θ_c^{t+1} its local
model); the bound is Ψ* = ε σ / √(2 ln(1.25/δ)) with δ = 1/M (M clients), ε = 10, σ = 0.05; the restart model is
the last aggregate at which every forgotten client's sensitivity is within Ψ* (the initial model if none), plus
N(0, σ²) on every parameter; then FedAvg rounds without them.

p: the paper's Ψ measures how much the round's aggregate moves without the client, so p is the client's weight in
that round's aggregate (``psi_weight: round``, the default). The code uses 1/M over all clients whatever the round
samples (``psi_weight: code``), which understates the sensitivity ≈ (M − 1)/(m − 1) times when m of M clients are
sampled. The code retrains until the remaining clients' mean training accuracy reaches a per-dataset threshold; the
deployable default here stops once it is back to the trained model's (``recovery.stop=remaining_accuracy``).
The distances are those training recorded (``history.client_stats``: the code tracks Ψ during training and stores
no update); without them they are computed from the stored models. Needs every round stored (``history.interval=1``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from fedunlearn.config import Config, spec
from fedunlearn.core.client_stats import server_stat
from fedunlearn.core.params import Params, add, distances_to, sample_weights
from fedunlearn.history import HistoryStore
from fedunlearn.seeds import declare, rng
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome, require_every_round
from fedunlearn.unlearning.recovery import RecoveryHParams, require_recovery
from fedunlearn.unlearning.registry import register

NOISE = declare("gaussian noise", 6)  # the restart's Gaussian noise (FedRecovery's stream)
DISTANCE = server_stat("distance", distances_to)  # ‖M^{t+1} − the client's model‖₂, each client

PSI_WEIGHTS = ("round", "code")


@dataclass
class SIFUHParams:
    epsilon: float = spec(gt=0.0)
    sigma: float = spec(ge=0.0)  # std of the noise added to every parameter of the restart model
    psi_weight: str = spec(choices=PSI_WEIGHTS)  # round: the client's weight in each round (the paper); code: 1/M
    recovery: RecoveryHParams = field(default_factory=RecoveryHParams)


def psi_star(epsilon: float, sigma: float, num_clients: int) -> float:
    """Ψ* = ε σ / √(2 ln(1.25/δ)), δ = 1/M."""
    return epsilon * sigma / math.sqrt(2 * math.log(1.25 * num_clients))


def sensitivities(steps: list[tuple[dict[int, float], dict[int, float]]], clients: list[int]) -> np.ndarray:
    """Ψ after each round (row t, t = 0 before any) for ``clients`` (columns), from each round's (distance, client
    weight p) by client: the distance ‖θ^{t+1} − θ_c^{t+1}‖ of the client's local model to the new aggregate adds
    p/(1 − p) of it. A client alone in its round (p = 1) passes the round's whole move ‖θ^{t+1} − θ^t‖ instead, and
    it counts in full: without the client there is no aggregate, and the model would not have moved."""
    psi = np.zeros((len(steps) + 1, len(clients)))
    for t, (distances, weights) in enumerate(steps, start=1):
        psi[t] = psi[t - 1]
        for j, c in enumerate(clients):
            if c in distances:
                p = weights[c]
                psi[t, j] += (p / (1 - p) if p < 1 else 1.0) * distances[c]
    return psi


def round_distances(
    history: HistoryStore, rounds: list[int], i: int, trained: Params, cids: list[int]
) -> dict[int, float]:
    """‖θ^{t+1} − θ_c^{t+1}‖ of ``cids`` in the i-th round: as training recorded it (``history.client_stats``),
    else from the stored models (θ^{t+1}: the next round's start, or the trained model after the last)."""
    t = rounds[i]
    recorded = history.client_stats(t, DISTANCE)
    if recorded is not None and all(c in recorded for c in cids):
        return {c: recorded[c] for c in cids}
    if not cids:
        return {}
    start = history.global_model(t)
    new = history.global_model(rounds[i + 1]) if i + 1 < len(rounds) else trained
    return distances_to(new, start, {c: history.client_update(t, c) for c in cids})


def global_move(history: HistoryStore, rounds: list[int], i: int, trained: Params) -> float:
    """‖θ^{t+1} − θ^t‖ of the i-th round (θ^{t+1}: the next round's start, or the trained model after the last)."""
    start = history.global_model(rounds[i])
    new = history.global_model(rounds[i + 1]) if i + 1 < len(rounds) else trained
    return float(np.sqrt(sum(float(np.sum((new[k].astype(np.float64) - start[k]) ** 2)) for k in start)))


@register("sifu")
class SIFU(UnlearningMethod[SIFUHParams]):
    """Roll back to the last model within the sensitivity bound, add noise, retrain without the forgotten clients."""

    client_stats = frozenset({DISTANCE})

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_every_round(cfg, self.name)
        require_recovery(self.name, self.hparams.recovery, methods)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p, h = self.hparams, ctx.history
        t0 = time.perf_counter()
        rounds = h.rounds()
        steps = []
        total = ctx.cfg.fl.num_clients
        for i, t in enumerate(rounds):
            cids = h.participants(t)
            weights = sample_weights([h.num_examples(t, c) for c in cids]) if cids else []
            distances = round_distances(h, rounds, i, ctx.trained, [c for c in cids if c in ctx.forget])
            if len(cids) == 1 and cids[0] in ctx.forget:  # a forgotten client alone in the round: its whole move
                distances = {cids[0]: global_move(h, rounds, i, ctx.trained)}
                weights = [1.0]
            steps.append(
                (
                    distances,
                    {c: (w if p.psi_weight == "round" or w == 1.0 else 1.0 / total)
                     for c, w in zip(cids, weights, strict=True)},
                )
            )  # fmt: skip
        bound = psi_star(p.epsilon, p.sigma, total)
        psi = sensitivities(steps, sorted(ctx.forget)).max(axis=1)
        admissible = int(np.nonzero(psi <= bound)[0].max())  # aggregations before the restart (0: the initial model)
        restart = h.global_model(rounds[admissible]) if admissible < len(rounds) else ctx.trained
        noise = rng(ctx.cfg.seed, NOISE)
        # drawn in name order: the same noise whatever order the model's arrays come in
        restart = add(
            restart, {k: noise.normal(0.0, p.sigma, v.shape).astype(v.dtype) for k, v in sorted(restart.items())}
        )
        outcome = UnlearningOutcome(
            restart, info={"psi_star": bound, "rollback_aggregations": admissible, "psi_final": float(psi[-1])}
        )
        ctx.step(outcome.rounds, f"{self.name}-rollback", 1, 1, restart, t0, [])
        outcome.params, recovered, outcome.stop = ctx.recover_until(restart, p.recovery, f"{self.name}-recovery")
        outcome.rounds.extend(recovered)
        return outcome
