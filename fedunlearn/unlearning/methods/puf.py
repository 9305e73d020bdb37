"""PUF (Mora, Mazzocca, Montanari, Bellavista, arXiv 2504.05822): negated pseudo-gradients, then recovery rounds.

As the authors' code does it (alessiomora/puf_unlearning @ 9c89bd7, ``main_puf.py``): in the unlearning round the
leaving clients train as in an ordinary round from the global model w (here through Flower, like any round; the
authors' training uses one local epoch and so does their unlearning round: ``epochs: null`` trains what training's
clients train, ``fl.local_epochs``, so that Δ_u is an ordinary round's update) and send Δ_u = w_u − w;

* ``variant: special`` (only the leaving clients train): w ← w − η_s · Σ_u (n_u / Σ_U n) Δ_u, η_s = 2;
* ``variant: regular`` (a normal round, the remaining clients R train too):
  w ← w + Σ_R (n_k / N) Δ_k − η_r · Σ_U (n_u / N) Δ_u with N = Σ_R n + Σ_U n, η_r = 20;

then FedAvg rounds without the leaving clients. The authors recover until test accuracy reaches the retrained
model's, at most 30 rounds in all: ``recovery.stop=retrain_accuracy`` (an evaluation protocol). The deployable
default stops once the remaining clients' own accuracy is back to the trained model's (``remaining_accuracy``). No
history is needed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fedunlearn.config import Config, spec
from fedunlearn.core.federation import Replies
from fedunlearn.core.params import Params, add, subtract, weighted_sum
from fedunlearn.seeds import Stream, client_seed, declare
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.recovery import RecoveryHParams, require_recovery
from fedunlearn.unlearning.registry import register

UNLEARN_CLIENT = declare("leaving client", 11)  # the leaving client's local training (FedQUIT's too)

VARIANTS = ("special", "regular")


@dataclass
class PUFHParams:
    variant: str = spec(choices=VARIANTS)
    eta_special: float = spec(gt=0.0)  # η_u of variant=special
    eta_regular: float = spec(gt=0.0)  # η_u of variant=regular
    epochs: float | None = spec(gt=0.0)  # the leaving clients' local epochs then (null: fl.local_epochs)
    recovery: RecoveryHParams = field(default_factory=RecoveryHParams)


def puf_step(
    leaving: list[tuple[Params, int]], remaining: list[tuple[Params, int]], eta: float, variant: str
) -> Params:
    """The aggregate update of the unlearning round from (Δ, n) of the leaving and the remaining clients."""
    if variant == "special":
        total = sum(n for _, n in leaving)
        return weighted_sum([d for d, _ in leaving], [-eta * n / total for _, n in leaving])
    total = sum(n for _, n in leaving) + sum(n for _, n in remaining)
    deltas = [d for d, _ in remaining] + [d for d, _ in leaving]
    weights = [n / total for _, n in remaining] + [-eta * n / total for _, n in leaving]
    return weighted_sum(deltas, weights)


@register("puf")
class PUF(UnlearningMethod[PUFHParams]):
    """Negated pseudo-gradient of the leaving clients' one-epoch update, then recovery rounds."""

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_recovery(self.name, self.hparams.recovery, methods)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p = self.hparams
        t0 = time.perf_counter()
        w, round_ = ctx.trained, ctx.last_round + 1
        group = f"{self.name}-unlearn-{round_}"
        seeds = {c: client_seed(ctx.cfg.seed, UNLEARN_CLIENT, round_, c) for c in sorted(ctx.forget)}
        leaving_replies = ctx.clients.train(w, seeds, ctx.plan(p.epochs), group)
        leaving = [(subtract(u.params, w), u.num_examples) for u in leaving_replies]
        remaining_replies = Replies()
        if p.variant == "regular":
            (_, cids), *_ = ctx.new_rounds(1)
            seeds = {c: client_seed(ctx.cfg.seed, Stream.RECOVERY, round_, c) for c in cids}
            remaining_replies = ctx.clients.train(w, seeds, ctx.plan(), group)
        remaining = [(subtract(u.params, w), u.num_examples) for u in remaining_replies]
        eta = p.eta_special if p.variant == "special" else p.eta_regular
        outcome = UnlearningOutcome(w, info={"variant": p.variant, "eta": eta, "leaving_replies": len(leaving)})
        if leaving:
            outcome.params = add(w, puf_step(leaving, remaining, eta, p.variant))
        used = [u.cid for u in remaining_replies] + [u.cid for u in leaving_replies]
        ctx.step(outcome.rounds, f"{self.name}-unlearn", 1, 1, outcome.params, t0, sorted(used), unit="round")
        outcome.params, recovered, outcome.stop = ctx.recover_until(outcome.params, p.recovery, f"{self.name}-recovery")
        outcome.rounds.extend(recovered)
        return outcome
