"""FedAvg rounds, and the training loop that records every round in the HistoryStore."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedunlearn.config import Config
from fedunlearn.fl.client_app import drops_out
from fedunlearn.fl.params import Params, add, sample_weights, subtract, weighted_sum
from fedunlearn.fl.trainer import ClientTrainer, ClientUpdate, TrainPlan, client_seed
from fedunlearn.history import HistoryStore

log = logging.getLogger(__name__)

TRAINING_STREAM = 0  # seed stream of federated training; retraining replays it


def fedavg(params: Params, updates: list[ClientUpdate]) -> tuple[Params, dict[int, Params]]:
    """M^{t+1} = M^t + Σ_k p_k (w_k − M^t); also returns each client's update by id."""
    deltas = {u.cid: subtract(u.params, params) for u in updates}
    if not updates:
        return params, deltas
    weights = sample_weights([u.num_examples for u in updates])
    return add(params, weighted_sum([deltas[u.cid] for u in updates], weights)), deltas


def sample_clients(cids: list[int], fraction: float, rng: np.random.Generator) -> list[int]:
    """A seeded sample of max(1, round(fraction·K)) client ids, sorted."""
    if fraction >= 1.0:
        return sorted(cids)
    k = max(1, round(fraction * len(cids)))
    return sorted(int(c) for c in rng.choice(cids, size=k, replace=False))


@dataclass
class RoundLog:
    """Per-round progress: what results.json lists under training.rounds."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        tag: str,
        round_: int,
        total: int,
        accuracy: float,
        loss: float,
        wall: float,
        cids: list[int],
        failed: list[int] | None = None,
    ) -> None:
        """``cids``: clients whose update was used; ``failed``: clients asked that did not reply."""
        record: dict[str, Any] = {
            "round": round_,
            "test_accuracy": accuracy,
            "test_loss": loss,
            "wall_s": wall,
            "clients": cids,
        }
        if failed is not None:
            record["failed_clients"] = failed
        self.records.append(record)
        shown = f"{len(cids)} clients" if len(cids) > 12 else f"clients {cids}"
        if failed:
            shown += f" ({len(failed)} failed)"
        log.info(
            "[%s] round %d/%d  test acc %.4f  loss %.4f  %s  %.2fs", tag, round_, total, accuracy, loss, shown, wall
        )


Evaluate = Callable[[Params], tuple[float, float]]


def replay_rounds(
    trainer: ClientTrainer,
    start: Params,
    schedule: list[tuple[int, list[int]]],
    plan: TrainPlan,
    seed: int,
    evaluate: Evaluate,
    tag: str,
    on_round: Callable[[int, Params, dict[int, Params], list[ClientUpdate]], None] | None = None,
    after_round: Callable[[int, Params, RoundLog], None] | None = None,
    log_so_far: RoundLog | None = None,
    total: int | None = None,
) -> tuple[Params, RoundLog]:
    """Run FedAvg over ``schedule`` (round number, client ids) from ``start``.

    Seeds come from the training stream, so the same schedule reproduces training exactly;
    retraining passes the training schedule minus the forgotten clients. ``on_round`` sees each
    round's starting model and updates, ``after_round`` the new model once evaluated.
    """
    params = start
    rounds = log_so_far if log_so_far is not None else RoundLog()
    total = total if total is not None else (schedule[-1][0] if schedule else 0)
    for round_, cids in schedule:
        t0 = time.perf_counter()
        seeds = {c: client_seed(seed, TRAINING_STREAM, round_, c) for c in cids}
        updates = trainer.train(params, seeds, plan, group=f"{tag}-{round_}") if cids else []
        new_params, deltas = fedavg(params, updates)
        if on_round is not None:
            on_round(round_, params, deltas, updates)
        params = new_params
        accuracy, loss = evaluate(params)
        replied = [u.cid for u in updates]
        failed = sorted(set(cids) - set(replied))
        rounds.add(tag, round_, total, accuracy, loss, time.perf_counter() - t0, replied, failed)
        if after_round is not None:
            after_round(round_, params, rounds)
    return params, rounds


def training_schedule(cfg: Config) -> list[tuple[int, list[int]]]:
    """Each training round's sampled client ids (a pure function of the config). Clients that left through
    ``forget.schedule`` are no longer sampled after their request's round."""
    rng = np.random.default_rng([cfg.seed, 1])
    gone_after = {c: r.round for r in cfg.forget.schedule for c in r.clients}
    schedule = []
    for t in range(1, cfg.fl.num_rounds + 1):
        pool = [c for c in range(cfg.fl.num_clients) if gone_after.get(c, t) >= t]
        schedule.append((t, sample_clients(pool, cfg.fl.fraction_train, rng)))
    return schedule


def first_training_rounds(cfg: Config) -> dict[int, int]:
    """Client id → the first round in which it trains (sampled and not dropped out, both seeded, so known at
    start); clients that never train are absent."""
    first: dict[int, int] = {}
    for t, cids in training_schedule(cfg):
        for c in cids:
            if c not in first and not drops_out(client_seed(cfg.seed, TRAINING_STREAM, t, c), cfg.fl.dropout_rate):
                first[c] = t
    return first


def train_federated(
    trainer: ClientTrainer,
    initial: Params,
    cfg: Config,
    store: HistoryStore,
    evaluate: Evaluate,
    after_round: Callable[[int, Params, RoundLog], None] | None = None,
    resume_from: tuple[int, RoundLog] | None = None,
    until: int | None = None,
) -> tuple[Params, RoundLog]:
    """Federated training from ``initial`` as ``cfg.fl`` says; each round's M^t and updates go to ``store``
    as it ends. ``resume_from`` (last finished round, its log) continues from ``initial``, the model after
    that round; ``until`` stops after that round (default: ``fl.num_rounds``)."""
    schedule = training_schedule(cfg)
    done, log_so_far = resume_from if resume_from is not None else (0, None)
    last = cfg.fl.num_rounds if until is None else until
    plan = TrainPlan.from_config(cfg)

    def record(round_: int, params: Params, deltas: dict[int, Params], updates: list[ClientUpdate]) -> None:
        store.record_round(round_, params, deltas, {u.cid: u.num_examples for u in updates})

    return replay_rounds(
        trainer,
        initial,
        [(t, cids) for t, cids in schedule if done < t <= last],
        plan,
        cfg.seed,
        evaluate,
        "train",
        on_round=record if cfg.history.record else None,
        after_round=after_round,
        log_so_far=log_so_far,
        total=cfg.fl.num_rounds,
    )
