"""One run, start to end: train with history → each unlearning method → evaluation → results dict.

It only needs a ClientTrainer, so the same code runs inside the Flower ServerApp (real clients on
Ray) and in-process in tests.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fedunlearn import unlearning
from fedunlearn.config import Config, method_names
from fedunlearn.data import federated_data
from fedunlearn.evaluation import Evaluator
from fedunlearn.fl.params import get_params
from fedunlearn.fl.trainer import ClientTrainer, CostMeter
from fedunlearn.fl.training import train_federated
from fedunlearn.history import HistoryStore
from fedunlearn.models import build_model
from fedunlearn.unlearning import UnlearningContext

log = logging.getLogger(__name__)


def _ratio(reference: float, value: float) -> float | None:
    return reference / value if value > 0 else None


def run_experiment(cfg: Config, trainer: ClientTrainer, run_dir: Path) -> dict[str, Any]:
    """Train, unlearn with every configured method, evaluate; return the results.json content."""
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
    store = HistoryStore(run_dir / cfg.history.dir, cfg.history.interval, cfg.history.dtype)
    evaluator = Evaluator(cfg, data, list(cfg.forget.clients))

    meter = CostMeter(trainer)
    t0 = time.perf_counter()
    trained, rounds = train_federated(meter, get_params(model), cfg, store, evaluator.test)
    results: dict[str, Any] = {
        "training": {
            "rounds": rounds.records,
            "wall_s": time.perf_counter() - t0,
            "client_epochs": meter.client_epochs,
            "client_updates": meter.client_updates,
            "num_parameters": num_params,
        },
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
    never = [c for c in forget if store.first_round_of([c]) is None]
    if never:
        log.warning("forgotten client(s) %s never took part in training: nothing of theirs is in the model", never)
    outcomes: dict[str, Any] = {}
    order = sorted(methods, key=lambda n: n != "retrain")  # retrain first: the others are compared to it
    for name in order:
        log.info("unlearning clients %s with %s", forget, name)
        meter = CostMeter(trainer)
        ctx = UnlearningContext(cfg, store, forget, meter, trained, evaluator.test, data)
        t0 = time.perf_counter()
        outcome = unlearning.create(name).unlearn(ctx)
        outcomes[name] = (outcome, time.perf_counter() - t0, meter)

    retrained = outcomes["retrain"][0].params if "retrain" in outcomes else None
    results["before_unlearning"] = {"metrics": evaluator.evaluate(trained, retrained)}
    results["unlearning"] = {}
    for name in methods:
        outcome, wall, meter = outcomes[name]
        entry: dict[str, Any] = {
            "clients": forget,
            "wall_s": wall,
            "client_epochs": meter.client_epochs + outcome.extra_client_epochs,
            "client_updates": meter.client_updates,
            "rounds": meter.rounds,
            "speedup_vs_retrain": None,
            "metrics": evaluator.evaluate(outcome.params, retrained),
            "recovery_rounds": outcome.rounds.records,
            "info": outcome.info,
        }
        if "retrain" in outcomes:
            _, r_wall, r_meter = outcomes["retrain"]
            entry["speedup_vs_retrain"] = {
                "client_epochs": _ratio(r_meter.client_epochs, entry["client_epochs"]),
                "wall": _ratio(r_wall, wall),
            }
        results["unlearning"][name] = entry
    return results
