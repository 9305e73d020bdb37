"""One run, start to end: train with history → each unlearning method → evaluation → results dict.

It only needs a ClientTrainer, so the same code runs inside the Flower ServerApp (real clients on
Ray) and in-process in tests. Progress is checkpointed after every training round and every finished
method, so a killed run resumes (``resume=true``) with the results an uninterrupted run would have had.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fedunlearn import unlearning
from fedunlearn.certificate import write_certificate
from fedunlearn.checkpoint import RunCheckpoint, config_fingerprint, save_params
from fedunlearn.config import Config, method_names
from fedunlearn.data import federated_data
from fedunlearn.evaluation import Evaluator
from fedunlearn.fl.params import Params, get_params
from fedunlearn.fl.trainer import ClientTrainer, CostMeter
from fedunlearn.fl.training import RoundLog, train_federated
from fedunlearn.history import HistoryStore
from fedunlearn.models import build_model
from fedunlearn.unlearning import UnlearningContext, UnlearningOutcome

log = logging.getLogger(__name__)


def _ratio(reference: float, value: float) -> float | None:
    return reference / value if value > 0 else None


def _train(
    cfg: Config, meter: CostMeter, initial: Params, store: HistoryStore, evaluator: Evaluator, ckpt: RunCheckpoint
) -> tuple[Params, dict[str, Any]]:
    """Train (or finish an interrupted training) with a checkpoint after every round; the model and the
    results' ``training`` entry."""
    saved = ckpt.training()
    progress: dict[str, Any] = {"round": 0, "rounds": [], "wall_s": 0.0, "client_epochs": 0, "client_updates": 0}
    params = initial
    if saved is None:
        store.truncate(0)  # killed before its first checkpoint: start the history over
    else:
        progress, params = saved
        store.truncate(progress["round"])  # a round killed half-way is recorded again
        store.verify()
        log.info("resuming after training round %d of %d", progress["round"], cfg.fl.num_rounds)
    if progress["round"] < cfg.fl.num_rounds:
        base = dict(progress)
        t0 = time.perf_counter()

        def checkpoint(round_: int, params: Params, rounds: RoundLog) -> None:
            progress.update(
                round=round_,
                rounds=rounds.records,
                wall_s=base["wall_s"] + time.perf_counter() - t0,
                client_epochs=base["client_epochs"] + meter.client_epochs,
                client_updates=base["client_updates"] + meter.client_updates,
            )
            ckpt.save_training(progress, params)

        params, _ = train_federated(
            meter,
            params,
            cfg,
            store,
            evaluator.test,
            after_round=checkpoint,
            resume_from=(base["round"], RoundLog(list(base["rounds"]))),
        )
    save_params(ckpt.model_path("trained"), params)
    return params, {k: progress[k] for k in ("rounds", "wall_s", "client_epochs", "client_updates")}


def _unlearn(name: str, ctx: UnlearningContext, ckpt: RunCheckpoint) -> tuple[UnlearningOutcome, float, dict[str, int]]:
    """Run one method, or take its saved outcome from an earlier attempt; (outcome, wall s, cost)."""
    saved = ckpt.method(name)
    if saved is not None:
        entry, params = saved
        log.info("%s: finished before the interruption, taking its saved outcome", name)
        outcome = UnlearningOutcome(params, RoundLog(entry["records"]), entry["info"], entry["extra_client_epochs"])
        return outcome, entry["wall_s"], entry["cost"]
    log.info("unlearning clients %s with %s", ctx.forget, name)
    meter = CostMeter(ctx.trainer)
    ctx.trainer = meter
    t0 = time.perf_counter()
    outcome = unlearning.create(name).unlearn(ctx)
    wall = time.perf_counter() - t0
    cost = {"rounds": meter.rounds, "client_updates": meter.client_updates, "client_epochs": meter.client_epochs}
    entry = {
        "records": outcome.rounds.records,
        "info": outcome.info,
        "extra_client_epochs": outcome.extra_client_epochs,
        "wall_s": wall,
        "cost": cost,
    }
    ckpt.save_method(name, entry, outcome.params)
    return outcome, wall, cost


def run_experiment(cfg: Config, trainer: ClientTrainer, run_dir: Path) -> dict[str, Any]:
    """Train, unlearn with every configured method, evaluate; return the results.json content.

    With ``cfg.resume`` it continues from the checkpoint in ``run_dir`` (if one was written)."""
    data = federated_data(cfg)
    model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)
    num_params = sum(p.numel() for p in model.parameters())
    log.info(
        "%s: %d train / %d test samples, %d clients (%s), model %s with %d parameters",
        cfg.dataset.name,
        len(data.train),
        len(data.test),
        data.num_clients,
        cfg.partition.name,
        cfg.model.name,
        num_params,
    )
    ckpt = RunCheckpoint(run_dir, config_fingerprint(cfg))
    if cfg.resume and ckpt.exists():
        ckpt.load()
    store = HistoryStore(run_dir / cfg.history.dir, cfg.history.interval, cfg.history.dtype)
    evaluator = Evaluator(cfg, data, list(cfg.forget.clients))

    trained, training = _train(cfg, CostMeter(trainer), get_params(model), store, evaluator, ckpt)
    results: dict[str, Any] = {
        "training": {**training, "num_parameters": num_params},
        "history": {
            "bytes": store.total_bytes(),
            "rounds_stored": len(store.rounds_stored()),
            "dtype": store.dtype,
            "interval": store.interval,
            "path": f"{cfg.history.dir}/",
        },
    }
    methods = method_names(cfg, unlearning.registered())
    if not cfg.forget.clients:
        results["final_metrics"] = evaluator.evaluate(trained)
        return results

    forget = sorted(cfg.forget.clients)
    outcomes: dict[str, tuple[UnlearningOutcome, float, dict[str, int]]] = {}
    for name in sorted(methods, key=lambda n: n != "retrain"):  # retrain first: the others are compared to it
        ctx = UnlearningContext(cfg, store, forget, trainer, trained, evaluator.test, data)
        outcomes[name] = _unlearn(name, ctx, ckpt)

    retrained = outcomes["retrain"][0].params if "retrain" in outcomes else None
    results["before_unlearning"] = {"metrics": evaluator.evaluate(trained, retrained)}
    results["unlearning"] = {}
    for name in methods:
        outcome, wall, cost = outcomes[name]
        entry: dict[str, Any] = {
            "clients": forget,
            "wall_s": wall,
            "client_epochs": cost["client_epochs"] + outcome.extra_client_epochs,
            "client_updates": cost["client_updates"],
            "rounds": cost["rounds"],
            "speedup_vs_retrain": None,
            "metrics": evaluator.evaluate(outcome.params, retrained),
            "recovery_rounds": outcome.rounds.records,
            "info": outcome.info,
        }
        if "retrain" in outcomes:
            _, r_wall, r_cost = outcomes["retrain"]
            entry["speedup_vs_retrain"] = {
                "client_epochs": _ratio(r_cost["client_epochs"], entry["client_epochs"]),
                "wall": _ratio(r_wall, wall),
            }
        results["unlearning"][name] = entry
    path = write_certificate(run_dir, 1, cfg, store, ckpt, results)
    results["certificates"] = [path.name]
    return results
