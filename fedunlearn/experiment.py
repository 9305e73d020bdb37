"""One run, start to end: train with history → unlearning request(s) → evaluation → results dict.

It only needs a ClientTrainer, so the same code runs inside the Flower ServerApp (real clients on
Ray) and in-process in tests. Progress is checkpointed after every training round, every request and
every finished method, so a killed run resumes (``resume=true``) with the results an uninterrupted run
would have had.

Two kinds of request: ``forget.clients`` is unlearned once after training by every configured method
(a side-by-side comparison); ``forget.schedule`` is a sequence of requests during training, each handled
by the one configured method, training going on from the unlearned model without the departed clients.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedunlearn import unlearning
from fedunlearn.certificate import write_certificate
from fedunlearn.checkpoint import RunCheckpoint, config_fingerprint, load_params, save_params
from fedunlearn.config import Config, departed_clients, method_names
from fedunlearn.data import FederatedData, federated_data
from fedunlearn.evaluation import Evaluator
from fedunlearn.fl.params import Params, get_params
from fedunlearn.fl.trainer import ClientTrainer, CostMeter
from fedunlearn.fl.training import RoundLog, train_federated
from fedunlearn.history import HistoryStore
from fedunlearn.history.writer import BackgroundWriter, FileWriter
from fedunlearn.models import build_model
from fedunlearn.unlearning import UnlearningContext, UnlearningOutcome

log = logging.getLogger(__name__)


def _ratio(reference: float, value: float) -> float | None:
    return reference / value if value > 0 else None


@dataclass
class Run:
    """What every stage of one run shares."""

    cfg: Config
    trainer: ClientTrainer
    run_dir: Path
    data: FederatedData
    store: HistoryStore
    ckpt: RunCheckpoint


class Training:
    """Federated training in segments (up to each request, then to the end), checkpointed every round."""

    def __init__(self, run: Run, initial: Params, test: Any) -> None:
        self.run = run
        self.test = test
        self.meter = CostMeter(run.trainer)
        saved = run.ckpt.training()
        self.progress: dict[str, Any] = {
            "round": 0,
            "rounds": [],
            "wall_s": 0.0,
            "client_epochs": 0,
            "client_updates": 0,
            "requests_done": 0,
            "requests": [],
        }
        self.params = initial
        if saved is None:
            run.store.truncate(0)  # killed before its first checkpoint: start the history over
        else:
            self.progress, self.params = saved
            run.store.truncate(self.progress["round"])  # a round killed half-way is recorded again
            log.info("resuming after training round %d of %d", self.progress["round"], run.cfg.fl.num_rounds)

    def until(self, last_round: int) -> Params:
        """Train up to and including ``last_round`` (nothing when already there)."""
        if self.progress["round"] >= last_round:
            return self.params
        base = dict(self.progress)
        epochs0, updates0 = self.meter.client_epochs, self.meter.client_updates
        t0 = time.perf_counter()

        def checkpoint(round_: int, params: Params, rounds: RoundLog) -> None:
            self.progress.update(
                round=round_,
                rounds=rounds.records,
                wall_s=base["wall_s"] + time.perf_counter() - t0,
                client_epochs=base["client_epochs"] + self.meter.client_epochs - epochs0,
                client_updates=base["client_updates"] + self.meter.client_updates - updates0,
            )
            self.save(params)

        self.params, _ = train_federated(
            self.meter,
            self.params,
            self.run.cfg,
            self.run.store,
            self.test,
            after_round=checkpoint,
            resume_from=(base["round"], RoundLog(list(base["rounds"]))),
            until=last_round,
        )
        return self.params

    def save(self, params: Params) -> None:
        self.params = params
        self.run.ckpt.save_training(self.progress, params)

    def summary(self) -> dict[str, Any]:
        return {k: self.progress[k] for k in ("rounds", "wall_s", "client_epochs", "client_updates")}


def _unlearn(
    run: Run, name: str, forget: list[int], trained: Params, test: Any
) -> tuple[UnlearningOutcome, float, dict[str, int]]:
    """Run one method on ``trained``; (outcome, wall seconds, client cost)."""
    log.info("unlearning clients %s with %s", forget, name)
    meter = CostMeter(run.trainer)
    ctx = UnlearningContext(run.cfg, run.store, forget, meter, trained, test, run.data)
    t0 = time.perf_counter()
    outcome = unlearning.create(name).unlearn(ctx)
    wall = time.perf_counter() - t0
    return (
        outcome,
        wall,
        {"rounds": meter.rounds, "client_updates": meter.client_updates, "client_epochs": meter.client_epochs},
    )


def _unlearn_once(
    run: Run, name: str, forget: list[int], trained: Params, test: Any
) -> tuple[UnlearningOutcome, float, dict[str, int]]:
    """``_unlearn``, or the saved outcome of an earlier attempt of the same run."""
    saved = run.ckpt.method(name)
    if saved is not None:
        entry, params = saved
        log.info("%s: finished before the interruption, taking its saved outcome", name)
        outcome = UnlearningOutcome(params, RoundLog(entry["records"]), entry["info"], entry["extra_client_epochs"])
        return outcome, entry["wall_s"], entry["cost"]
    outcome, wall, cost = _unlearn(run, name, forget, trained, test)
    saved_entry = {
        "records": outcome.rounds.records,
        "info": outcome.info,
        "extra_client_epochs": outcome.extra_client_epochs,
        "wall_s": wall,
        "cost": cost,
    }
    run.ckpt.save_method(name, saved_entry, outcome.params)
    return outcome, wall, cost


def _entry(
    forget: list[int],
    outcome: UnlearningOutcome,
    wall: float,
    cost: dict[str, int],
    metrics: dict[str, Any],
    reference: tuple[float, dict[str, int]] | None,
) -> dict[str, Any]:
    """One method's results.json entry; ``reference``: retrain's (wall, cost) for the speed-ups."""
    entry: dict[str, Any] = {
        "clients": forget,
        "wall_s": wall,
        "client_epochs": cost["client_epochs"] + outcome.extra_client_epochs,
        "client_updates": cost["client_updates"],
        "rounds": cost["rounds"],
        "speedup_vs_retrain": None,
        "metrics": metrics,
        "recovery_rounds": outcome.rounds.records,
        "info": outcome.info,
    }
    if reference is not None:
        r_wall, r_cost = reference
        entry["speedup_vs_retrain"] = {
            "client_epochs": _ratio(r_cost["client_epochs"], entry["client_epochs"]),
            "wall": _ratio(r_wall, wall),
        }
    return entry


def _compare_methods(run: Run, methods: list[str], trained: Params) -> dict[str, Any]:
    """``forget.clients``: every method on the same trained model and history, side by side."""
    forget = sorted(run.cfg.forget.clients)
    evaluator = Evaluator(run.cfg, run.data, forget)
    outcomes = {}
    for name in sorted(methods, key=lambda n: n != "retrain"):  # retrain first: the others are compared to it
        outcomes[name] = _unlearn_once(run, name, forget, trained, evaluator.test)
    retrained = outcomes["retrain"][0].params if "retrain" in outcomes else None
    reference = (outcomes["retrain"][1], outcomes["retrain"][2]) if "retrain" in outcomes else None
    before = evaluator.evaluate(trained, retrained)
    results: dict[str, Any] = {"before_unlearning": {"metrics": before}, "unlearning": {}}
    for name in methods:
        outcome, wall, cost = outcomes[name]
        metrics = evaluator.evaluate(outcome.params, retrained)
        results["unlearning"][name] = _entry(forget, outcome, wall, cost, metrics, reference)
    manifest = run.store.freeze_manifest("manifest-request-1.json")
    certified = {n: (results["unlearning"][n], run.ckpt.model_path(n)) for n in methods}
    path = write_certificate(run.run_dir, 1, run.cfg, manifest, run.ckpt.model_path("trained"), before, certified)
    results["certificates"] = [path.name]
    return results


def _request(run: Run, training: Training, n: int, after_round: int, clients: list[int], gone: list[int]) -> None:
    """``forget.schedule`` request ``n``: unlearn every client departed so far from the current model, using
    the history so far; training then goes on from the unlearned model. Certificate ``n`` records it."""
    name = method_names(run.cfg, unlearning.registered())[0]
    evaluator = Evaluator(run.cfg, run.data, gone)
    before = training.params
    before_path = run.ckpt.model_path(f"before-request-{n}")
    save_params(before_path, before)
    log.info("request %d after round %d: client(s) %s leave", n, after_round, clients)
    outcome, wall, cost = _unlearn(run, name, gone, before, evaluator.test)
    after_path = run.ckpt.model_path(f"{name}-request-{n}")
    save_params(after_path, outcome.params)
    metrics_before = evaluator.evaluate(before)
    entry = {
        "request": n,
        "after_round": after_round,
        **_entry(clients, outcome, wall, cost, evaluator.evaluate(outcome.params), None),
        "forgotten_so_far": gone,
        "method": name,
        "metrics_before": metrics_before,
    }
    manifest = run.store.freeze_manifest(f"manifest-request-{n}.json")
    write_certificate(run.run_dir, n, run.cfg, manifest, before_path, metrics_before, {name: (entry, after_path)})
    training.progress["requests"].append(entry)
    training.progress["requests_done"] = n
    training.save(outcome.params)


def _sequential_summary(run: Run, training: Training, final: Params) -> dict[str, Any]:
    """The end of a ``forget.schedule`` run against retraining without every departed client."""
    gone = departed_clients(run.cfg)
    name = method_names(run.cfg, unlearning.registered())[0]
    evaluator = Evaluator(run.cfg, run.data, gone)
    ref, ref_wall, ref_cost = _unlearn_once(run, "retrain", gone, final, evaluator.test)
    requests = training.progress["requests"]
    cost = {k: sum(r[k] for r in requests) for k in ("client_epochs", "client_updates", "rounds")}
    total = UnlearningOutcome(final, RoundLog(), {"requests": len(requests), "sequential": True})
    first_before = load_params(run.ckpt.model_path("before-request-1"))
    return {
        "requests": requests,
        "before_unlearning": {"metrics": evaluator.evaluate(first_before, ref.params)},
        "unlearning": {
            name: _entry(
                gone,
                total,
                sum(r["wall_s"] for r in requests),
                cost,
                evaluator.evaluate(final, ref.params),
                (ref_wall, ref_cost),
            ),
            "retrain": _entry(
                gone, ref, ref_wall, ref_cost, evaluator.evaluate(ref.params, ref.params), (ref_wall, ref_cost)
            ),
        },
        "certificates": [f"certificate-{r['request']}.json" for r in requests],
    }


def run_experiment(cfg: Config, trainer: ClientTrainer, run_dir: Path) -> dict[str, Any]:
    """Train, handle the unlearning request(s), evaluate; return the results.json content.

    With ``cfg.resume`` it continues from the checkpoint in ``run_dir`` (if one was written). History and
    checkpoint files are written behind the rounds (one ordered background writer) and are all on disk when
    this returns."""
    with BackgroundWriter() as writer:
        return _run(cfg, trainer, run_dir, writer)


def _run(cfg: Config, trainer: ClientTrainer, run_dir: Path, writer: FileWriter) -> dict[str, Any]:
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
    ckpt = RunCheckpoint(run_dir, config_fingerprint(cfg), writer)
    if cfg.resume and ckpt.exists():
        ckpt.load()
    store = HistoryStore(run_dir / cfg.history.dir, cfg.history.interval, cfg.history.dtype, writer=writer)
    run = Run(cfg, trainer, run_dir, data, store, ckpt)
    test = Evaluator(cfg, data, departed_clients(cfg)).test
    training = Training(run, get_params(model), test)

    gone: list[int] = []
    for n, request in enumerate(cfg.forget.schedule, start=1):
        gone = sorted({*gone, *request.clients})
        if n > training.progress["requests_done"]:
            training.until(request.round)
            _request(run, training, n, request.round, sorted(request.clients), gone)
    final = training.until(cfg.fl.num_rounds)
    save_params(ckpt.model_path("trained"), final)

    results: dict[str, Any] = {
        "training": {**training.summary(), "num_parameters": num_params},
        "history": {
            "bytes": store.total_bytes(),
            "rounds_stored": len(store.rounds_stored()),
            "dtype": store.dtype,
            "interval": store.interval,
            "path": f"{cfg.history.dir}/",
        },
    }
    if cfg.forget.schedule:
        results.update(_sequential_summary(run, training, final))
    elif cfg.forget.clients:
        results.update(_compare_methods(run, method_names(cfg, unlearning.registered()), final))
    else:
        results["final_metrics"] = Evaluator(cfg, data, []).evaluate(final)
    return results
