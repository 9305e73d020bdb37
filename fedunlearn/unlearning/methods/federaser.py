"""FedEraser (Liu et al., IWQoS 2021): replay the stored rounds, calibrating each step by brief retraining.

Step j starts from the unlearned model M̃^{t_j}; the remaining clients train ``calibration_ratio`` × training's local
SGD steps from it, and their new directions are rescaled with the magnitudes of their stored updates
U_k^{t_j} = w_k^{t_j} − M^{t_j}, paired with the round's *starting* model M^{t_j}. The first step needs no
calibration: M̃^{t_2} = M^{t_1} + Σ p'_k U_k^{t_1}.

Against the authors' code (``Fed_Unlearn_base.py``, ``unlearning`` / ``unlearning_step_once``):

* the code pairs the stored client models with the *post-aggregation* global model of their round
  (``selected_GMs[epoch + 1]``); that is a bug (it costs accuracy) and is not offered;
* the code rounds the calibration up to whole epochs (``ceil(local_epoch · ratio)``); fedunlearn trains
  ratio × the local steps, as the paper's "r × the local training" (the same whenever ratio × fl.local_epochs is
  whole);
* ``granularity: layer`` is the code's calibration of the mean update per layer, with the code's equal client
  weights (``layer_weights: equal``) or sample weights;
* ``alignment: start`` replays rounds 1, 1+Δ, … (the paper's t_1 = 1); ``end`` replays Δ, 2Δ, … as the code does,
  whose first step then starts from round Δ's clients, trained after Δ−1 rounds that include the forgotten
  client;
* a layer whose new update is zero gets a zero step (the code's division gives NaN).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fedunlearn.config import Config, ConfigError, spec
from fedunlearn.core.params import add, subtract, weighted_sum
from fedunlearn.seeds import client_seed, declare
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome, require_stored
from fedunlearn.unlearning.calibration import GRANULARITIES, LAYER_WEIGHTS, calibrated_step
from fedunlearn.unlearning.registry import register
from fedunlearn.unlearning.replay import load_round, replay_schedule

CALIBRATION = declare("calibration", 1)  # FedEraser's calibration training (Crab's recovery shares it)

ALIGNMENTS = ("start", "end")


@dataclass
class FedEraserHParams:
    calibration_ratio: float = spec(gt=0.0, le=1.0)  # r: calibration trains r × training's local SGD steps
    interval: int = spec(ge=1)  # Δt: replay every interval-th round
    granularity: str = spec(choices=GRANULARITIES)
    layer_weights: str = spec(choices=LAYER_WEIGHTS)  # granularity=layer: how client updates are averaged
    alignment: str = spec(choices=ALIGNMENTS)  # start: rounds 1, 1+Δ, …; end: Δ, 2Δ, …


@register("federaser")
class FedEraser(UnlearningMethod[FedEraserHParams]):
    """Replay the stored rounds with calibration training: Δt/r fewer client-epochs than retraining."""

    def validate(self, cfg: Config, methods: list[str]) -> None:
        p = self.hparams
        require_stored(cfg, "unlearning.federaser.interval", p.interval)
        if p.alignment == "end" and (p.interval - 1) % cfg.history.interval != 0:
            raise ConfigError(
                "unlearning.federaser.alignment",
                f"end replays rounds {p.interval}, {2 * p.interval}, …, which history.interval="
                f"{cfg.history.interval} does not store; use alignment=start",
            )

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p = self.hparams
        epochs = p.calibration_ratio * ctx.cfg.fl.local_epochs
        plan = ctx.plan(epochs)
        schedule = replay_schedule(ctx, p.interval, p.alignment)
        outcome = UnlearningOutcome(ctx.history.global_model(schedule[0]))
        outcome.info = {"calibration_epochs": epochs, "steps": len(schedule), "replayed_rounds": schedule}
        for j, round_ in enumerate(schedule):
            t0 = time.perf_counter()
            stored = load_round(ctx, round_)
            if not stored.cids:
                continue
            params = outcome.params
            replies = None
            if j == 0:
                equal = p.granularity == "layer" and p.layer_weights == "equal"
                step = weighted_sum(
                    stored.updates, [1.0 / len(stored.cids)] * len(stored.cids) if equal else stored.weights
                )
                used = stored.cids
            else:
                seeds = {c: client_seed(ctx.cfg.seed, CALIBRATION, round_, c) for c in stored.cids}
                replies = ctx.clients.train(params, seeds, plan, group=f"{self.name}-{round_}")
                used = [u.cid for u in replies]
                if not used:
                    continue
                # clients that failed to reply drop out of this step; weights renormalise over the rest
                stored = stored.restrict(used)
                new = (subtract(u.params, params) for u in replies)
                step = calibrated_step(stored.updates, new, stored.weights, p.granularity, p.layer_weights)
            outcome.params = add(params, step)
            ctx.step(outcome.rounds, self.name, j + 1, len(schedule), outcome.params, t0, used, replies)
        return outcome
