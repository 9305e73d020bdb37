"""FedAvg on the server: client sampling, aggregation, and rounds run through a ``ClientTrainer``.

Knows nothing of the history or the experiment: what a caller does with each round's updates (record them,
checkpoint) it passes in as ``on_round`` / ``after_round``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fedunlearn.core.federation import ClientFailure, ClientTrainer, Replies
from fedunlearn.core.params import Params, add, sample_weights, subtract, weighted_sum
from fedunlearn.core.task import TrainPlan
from fedunlearn.seeds import Stream, client_seed

log = logging.getLogger("fedunlearn.rounds")
OMIT_NONE = {"omit_none": True}  # field metadata (fedunlearn.results.codec): not written when None
MANY_EPOCHS = 10  # a method's server-side epochs beyond this many are logged as one line when they end

Evaluate = Callable[[Params], tuple[float, float]]
Curve = Callable[[Params], tuple[float | None, float | None]]  # a round's (test accuracy, loss), or (None, None)


def no_curve(params: Params) -> tuple[None, None]:
    """A round evaluated not at all (``evaluation.curves=false``)."""
    return None, None


Unit = Literal["round", "step", "epoch"]  # a federated round / a step of a replay / an epoch computed on the server
OnRound = Callable[[int, Params, Params, dict[int, Params], Replies], None]  # round, M^t, M^{t+1}, updates, replies
AfterRound = Callable[[int, Params, "RoundLog"], None]


def fedavg(params: Params, replies: Replies) -> tuple[Params, dict[int, Params]]:
    """M^{t+1} = M^t + Σ_k p_k (w_k − M^t); also returns each client's update by id."""
    deltas = {u.cid: subtract(u.params, params) for u in replies}
    if not replies:
        return params, deltas
    weights = sample_weights([u.num_examples for u in replies])
    return add(params, weighted_sum([deltas[u.cid] for u in replies], weights)), deltas


def sample_clients(cids: list[int], fraction: float, generator: np.random.Generator) -> list[int]:
    """A seeded sample of max(1, round(fraction·K)) client ids, sorted."""
    if fraction >= 1.0:
        return sorted(cids)
    k = max(1, round(fraction * len(cids)))
    return sorted(int(c) for c in generator.choice(cids, size=k, replace=False))


@dataclass(frozen=True)
class RoundRecord:
    """One round (or one step of a method): what results.json lists under ``rounds[]``."""

    round: int
    test_accuracy: float | None
    test_loss: float | None
    wall_s: float
    clients: list[int]  # clients whose update was used
    failed_clients: list[int] | None = field(default=None, metadata=OMIT_NONE)  # dropped out (fl.dropout_rate)
    failures: list[ClientFailure] | None = field(default=None, metadata=OMIT_NONE)  # raised; fl.max_client_failures
    phase: str = ""  # e.g. "train", "retrain", "federaser", "pga-ascent"
    unit: Unit = "round"


class RoundLog(list[RoundRecord]):
    """Rounds so far, each logged as it is added."""

    def add(
        self,
        tag: str,
        round_: int,
        total: int,
        accuracy: float | None,
        loss: float | None,
        wall: float,
        cids: list[int],
        replies: Replies | None = None,
        unit: Unit = "round",
    ) -> RoundRecord:
        """``replies``: the round's replies, for who dropped out or failed (None: a step without clients)."""
        record = RoundRecord(
            round_,
            accuracy,
            loss,
            wall,
            cids,
            replies.dropped if replies is not None else None,
            replies.failures if replies is not None else None,
            tag,
            unit,
        )
        self.append(record)
        shown = f"{len(cids)} clients" if len(cids) > 12 else f"clients {cids}"
        if replies is not None and replies.dropped:
            shown += f" ({len(replies.dropped)} dropped out)"
        if replies is not None and replies.failures:
            shown += f" ({len(replies.failures)} failed: {replies.failures[0].error})"
        figures = "" if accuracy is None else f"  test acc {accuracy:.4f}  loss {loss:.4f}"
        if unit == "epoch":  # the server's own epochs (distillation, ascent): many epochs log one line, at the end
            spent = sum(r.wall_s for r in self if r.phase == tag and r.unit == "epoch")
            log.log(
                logging.INFO if round_ == total or total <= MANY_EPOCHS else logging.DEBUG,
                "[%s] %d/%d epochs on the server%s  %.2fs", tag, round_, total, figures, spent,
                extra={"phase": tag, "done": round_, "total": total, "unit": unit},
            )  # fmt: skip
            return record
        log.info(
            "[%s] round %d/%d%s  %s  %.2fs", tag, round_, total, figures, shown, wall,
            extra={"phase": tag, "done": round_, "total": total, "unit": unit},
        )  # fmt: skip
        return record


def replay_rounds(
    trainer: ClientTrainer,
    start: Params,
    schedule: list[tuple[int, list[int]]],
    plan: TrainPlan,
    seed: int,
    evaluate: Curve,
    tag: str,
    on_round: OnRound | None = None,
    after_round: AfterRound | None = None,
    log_so_far: RoundLog | None = None,
    total: int | None = None,
    stream: Stream = Stream.TRAINING,
) -> tuple[Params, RoundLog]:
    """Run FedAvg over ``schedule`` (round number, client ids) from ``start``.

    Seeds come from ``stream`` (training's by default), so the same schedule reproduces training exactly;
    retraining passes the training schedule minus the forgotten clients. ``on_round`` sees each round's
    starting model, new model and updates, ``after_round`` the new model once evaluated.
    """
    params = start
    rounds = log_so_far if log_so_far is not None else RoundLog()
    total = total if total is not None else (schedule[-1][0] if schedule else 0)
    for round_, cids in schedule:
        t0 = time.perf_counter()
        seeds = {c: client_seed(seed, stream, round_, c) for c in cids}
        replies = trainer.train(params, seeds, plan, group=f"{tag}-{round_}") if cids else Replies()
        new_params, deltas = fedavg(params, replies)
        if on_round is not None:
            on_round(round_, params, new_params, deltas, replies)
        params = new_params
        accuracy, loss = evaluate(params)
        rounds.add(tag, round_, total, accuracy, loss, time.perf_counter() - t0, [u.cid for u in replies], replies)
        if after_round is not None:
            after_round(round_, params, rounds)
    return params, rounds


def divergence(records: list[RoundRecord], num_classes: int) -> str | None:
    """Why training looks diverged after the last of ``records`` — a non-finite test loss, or test accuracy
    back at chance after having been well above it — or None."""
    last = records[-1]
    if last.test_loss is not None and not math.isfinite(last.test_loss):
        return f"the test loss is {last.test_loss} at round {last.round}"
    chance = 1.0 / num_classes
    accuracies = [(r.test_accuracy, r.round) for r in records if r.test_accuracy is not None]
    if not accuracies or last.test_accuracy is None:
        return None
    peak, peak_round = max(accuracies)
    if peak >= chance + 0.5 * (1 - chance) and last.test_accuracy <= chance + 0.1 * (1 - chance):
        return (
            f"test accuracy fell to {last.test_accuracy:.3f} at round {last.round} (chance is {chance:.3f}) after "
            f"{peak:.3f} at round {peak_round}"
        )
    return None
