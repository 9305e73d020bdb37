"""One run as named stages: train → for each request: unlearn with each method → evaluate → certify.

``run_experiment`` needs only a ClientTrainer, so the same code runs inside the Flower ServerApp (real clients
on Ray) and in-process in tests. Training checkpoints after every round; every other stage goes through
``RunCheckpoint.stage`` — the one place that decides "run it, or read back what it gave before the interruption"
— so a killed run resumes (``resume=true``) to the results an uninterrupted run would have had.

Two kinds of request: ``forget.clients`` is unlearned once after training by every configured method (a
side-by-side comparison); ``forget.schedule`` is a sequence of requests during training, each handled by the
one configured method, training going on from the unlearned model without the departed clients.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedunlearn import unlearning
from fedunlearn.config import Config, departed_clients, method_names
from fedunlearn.data import FederatedData, federated_data
from fedunlearn.evaluation import Evaluator, Metrics
from fedunlearn.experiment.certificate import write_certificate
from fedunlearn.experiment.checkpoint import RunCheckpoint, save_params
from fedunlearn.experiment.references import report_to_json, train_references
from fedunlearn.fl.fedavg import Evaluate, RoundLog, divergence, replay_rounds, training_schedule
from fedunlearn.fl.federation import ClientTrainer, Cost, CostMeter, Replies
from fedunlearn.fl.params import Params, distances_to, get_params
from fedunlearn.fl.task import TrainPlan, warm_up
from fedunlearn.history import CLIENT_STATS, DISTANCE, RECEIVED_LOSS, HistoryStore
from fedunlearn.history.writer import BackgroundWriter, FileWriter
from fedunlearn.models import build_model
from fedunlearn.reporting.results import (
    Bytes,
    Compute,
    Divergence,
    HistoryInfo,
    MethodResult,
    MethodRun,
    RequestResult,
    RunResult,
    TrainingResult,
    method_run_from_json,
    method_run_to_json,
    request_from_json,
    request_to_json,
    rounds_from_json,
    rounds_to_json,
)
from fedunlearn.unlearning import UnlearningContext

log = logging.getLogger("fedunlearn")


class TrainingDiverged(RuntimeError):
    """Training diverged and ``fl.on_divergence=error`` asks to stop."""


@dataclass
class Run:
    """What every stage of one run shares."""

    cfg: Config
    trainer: ClientTrainer
    run_dir: Path
    data: FederatedData
    store: HistoryStore
    ckpt: RunCheckpoint
    test: Evaluate


# -- train -----------------------------------------------------------------------------------------


@dataclass
class TrainingState:
    """Training's progress: what its checkpoint holds besides the model."""

    round: int = 0
    rounds: RoundLog = dataclasses.field(default_factory=RoundLog)
    wall_s: float = 0.0
    cost: Cost = dataclasses.field(default_factory=Cost)
    diverged: Divergence | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "rounds": rounds_to_json(self.rounds),
            "wall_s": self.wall_s,
            "cost": dataclasses.asdict(self.cost),
            "diverged": None if self.diverged is None else dataclasses.asdict(self.diverged),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainingState:
        div = d["diverged"]
        return cls(
            d["round"],
            RoundLog(rounds_from_json(d["rounds"])),
            d["wall_s"],
            Cost(**d["cost"]),
            None if div is None else Divergence(div["round"], div["reason"]),
        )


def recorded_stats(cfg: Config) -> frozenset[str]:
    """The per-client stats training records (``history.client_stats``): auto = those the requested methods read."""
    if cfg.history.client_stats == "all":
        return frozenset(CLIENT_STATS)
    if cfg.history.client_stats == "none":
        return frozenset()
    names = method_names(cfg, unlearning.registered())
    return frozenset().union(*(unlearning.method_class(n).client_stats for n in names))


class Training:
    """The train stage: federated training in segments (up to each request, then to the end), every round's
    M^t and updates recorded in the history, checkpointed after every round."""

    def __init__(self, run: Run, initial: Params) -> None:
        self.run = run
        self.meter = CostMeter(run.trainer)
        self.state = TrainingState()
        self.params = initial
        saved = run.ckpt.training()
        if saved is None:
            run.store.truncate(0)  # killed before its first checkpoint: start the history over
            return
        progress, self.params = saved
        self.state = TrainingState.from_json(progress)
        run.store.truncate(self.state.round)  # a round killed half-way is recorded again
        log.info("resuming after training round %d of %d", self.state.round, run.cfg.fl.num_rounds)

    def continue_from(self, params: Params) -> None:
        """Go on from ``params`` (a sequential request's unlearned model) instead of the last round's model."""
        self.params = params

    def until(self, last_round: int) -> Params:
        """Train up to and including ``last_round`` (nothing when already there)."""
        if self.state.round >= last_round:
            return self.params
        cfg = self.run.cfg
        base, base_cost = dataclasses.replace(self.state), self.state.cost
        self.meter.cost = Cost()
        t0 = time.perf_counter()

        stats = recorded_stats(cfg)

        def record(round_: int, params: Params, new: Params, deltas: dict[int, Params], replies: Replies) -> None:
            values: dict[str, dict[int, float]] = {}
            if RECEIVED_LOSS in stats:
                values[RECEIVED_LOSS] = {u.cid: u.received_loss for u in replies if u.received_loss is not None}
            if DISTANCE in stats:
                values[DISTANCE] = distances_to(new, params, deltas)
            self.run.store.record_round(round_, params, deltas, {u.cid: u.num_examples for u in replies}, values)

        def checkpoint(round_: int, params: Params, rounds: RoundLog) -> None:
            self.state.round, self.state.rounds = round_, rounds
            self.state.wall_s = base.wall_s + time.perf_counter() - t0
            self.state.cost = base_cost + self.meter.cost
            if self.state.diverged is None:
                self._guard(rounds)
            self.params = params
            self.run.ckpt.save_training(self.state.to_json(), params)

        schedule = [(t, c) for t, c in training_schedule(cfg) if self.state.round < t <= last_round]
        self.params, _ = replay_rounds(
            self.meter,
            self.params,
            schedule,
            TrainPlan.from_config(cfg, received_loss=RECEIVED_LOSS in stats),
            cfg.seed,
            self.run.test,
            "train",
            on_round=record if cfg.history.record else None,
            after_round=checkpoint,
            log_so_far=RoundLog(self.state.rounds),
            total=cfg.fl.num_rounds,
        )
        return self.params

    def _guard(self, rounds: RoundLog) -> None:
        reason = divergence(rounds, self.run.data.num_classes)
        if reason is None:
            return
        if self.run.cfg.fl.on_divergence == "error":
            raise TrainingDiverged(f"training diverged: {reason} (fl.on_divergence=error; try a smaller fl.lr)")
        self.state.diverged = Divergence(rounds[-1].round, reason)
        log.warning(
            "TRAINING DIVERGED: %s. Unlearning from this model compares methods on a broken model; try a smaller "
            "fl.lr (fl.on_divergence=error stops the run instead)",
            reason,
        )

    def result(self, num_parameters: int) -> TrainingResult:
        s = self.state
        return TrainingResult(
            list(s.rounds),
            s.wall_s,
            s.cost.client_epochs,
            s.cost.client_updates,
            num_parameters,
            Bytes(s.cost.bytes_to_clients, s.cost.bytes_from_clients),
            s.diverged,
            Compute.of(s.cost),
        )


# -- unlearn, evaluate -------------------------------------------------------------------------------


def unlearn(
    run: Run, name: str, evaluator: Evaluator, model: Params, reference: float | None = None
) -> tuple[MethodRun, Params]:
    """The unlearn stage of one method: ``name`` removes the evaluator's forgotten clients from ``model``;
    ``reference``: retrain's test accuracy, when it ran first."""
    forget = evaluator.forget
    log.info("unlearning clients %s with %s", forget, name)
    exact = unlearning.method_class(name).exact
    meter = CostMeter(run.trainer, exact=exact and run.cfg.fl.exact_reference)
    ctx = UnlearningContext(
        run.cfg, run.store, forget, meter, model, evaluator.test, run.data, evaluator.on_remaining, reference,
        run.cfg.evaluation.curves,
    )  # fmt: skip
    t0 = time.perf_counter()
    outcome = unlearning.create(name, run.cfg).unlearn(ctx)
    wall = time.perf_counter() - t0
    if ctx.evaluations:  # a stop rule's federated evaluations: client work that client-epochs do not count
        outcome.info.update({"federated_evaluations": ctx.evaluations, "federated_evaluation_s": ctx.evaluation_s})
    if outcome.stop is not None:
        log.info("%s stopped by its %s rule after %d", name, outcome.stop.rule, outcome.stop.after)
    if exact and meter.failures:
        log.warning(
            "%s tolerated %d ClientApp failure(s) (fl.exact_reference=false): it is not exact, and every distance "
            "to it is to an inexact reference", name, meter.failures,
        )  # fmt: skip
    exactness = (meter.failures == 0) if exact else None
    return MethodRun(wall, meter.cost, list(outcome.rounds), outcome.info, outcome.stop, exactness), outcome.params


def unlearn_once(
    run: Run, key: str, name: str, evaluator: Evaluator, model: Params, reference: float | None = None
) -> tuple[MethodRun, Params]:
    """``unlearn`` as a resumable stage: saved as models/<key>.safetensors."""

    def compute() -> tuple[dict[str, Any], Params]:
        method_run, params = unlearn(run, name, evaluator, model, reference)
        return method_run_to_json(method_run), params

    saved, params = run.ckpt.stage(key, key, compute)
    return method_run_from_json(saved), params


@dataclass(frozen=True)
class Unlearned:
    """What the request stages give the run's results."""

    before: Metrics | None = None
    methods: dict[str, MethodResult] | None = None
    certificates: list[str] | None = None
    requests: list[RequestResult] | None = None
    references: dict[str, Any] | None = None


def compare(run: Run, methods: list[str], trained: Params) -> Unlearned:
    """``forget.clients``: every method on the same trained model and history, side by side, and a certificate."""
    forget = sorted(run.cfg.forget.clients)
    evaluator = Evaluator(run.cfg, run.data, forget)
    done: dict[str, tuple[MethodRun, Params]] = {}
    accuracy = None
    for name in sorted(methods, key=lambda n: n != "retrain"):  # retrain first: the others are compared to it
        done[name] = unlearn_once(run, name, name, evaluator, trained, accuracy)
        if name == "retrain":
            accuracy = evaluator.test(done[name][1])[0]
    references = None
    if run.cfg.evaluation.references:
        report = train_references(run.cfg, run.trainer, forget, evaluator, run.data.input_shape, run.data.num_classes)
        references = report_to_json(report)
    reference = done.get("retrain")
    retrained = reference[1] if reference else None
    before = evaluator.evaluate(trained, retrained)
    results = {
        name: MethodResult.of(
            forget, done[name][0], evaluator.evaluate(done[name][1], retrained), reference[0] if reference else None
        )
        for name in methods
    }
    manifest = run.store.freeze_manifest("manifest-request-1.json")
    certified = {n: (results[n], run.ckpt.model_path(n)) for n in methods}
    trained_path = run.ckpt.model_path("trained")
    chain = (len(run.store.rounds()), run.store.head)
    path = write_certificate(
        run.run_dir, 1, run.cfg.fl.num_rounds, run.cfg, manifest, trained_path, before, certified, chain
    )
    return Unlearned(before, results, [path.name], references=references)


def request(
    run: Run, training: Training, n: int, after_round: int, clients: list[int], gone: list[int]
) -> RequestResult:
    """``forget.schedule`` request ``n`` as a resumable stage: train up to its round, unlearn every client departed
    so far from that model with the history so far, certify; training then goes on from the unlearned model."""
    name = method_names(run.cfg, unlearning.registered())[0]

    def compute() -> tuple[dict[str, Any], Params]:
        evaluator = Evaluator(run.cfg, run.data, gone)
        before = training.until(after_round)
        before_path = run.ckpt.model_path(f"before-request-{n}")
        run.ckpt.save_pinned(before_path, before)
        log.info("request %d after round %d: client(s) %s leave", n, after_round, clients)
        method_run, after = unlearn(run, name, evaluator, before)
        metrics_before = evaluator.evaluate(before)
        outcome = MethodResult.of(clients, method_run, evaluator.evaluate(after), None)
        result = RequestResult(n, after_round, name, gone, metrics_before, outcome)
        manifest = run.store.freeze_manifest(f"manifest-request-{n}.json")
        after_path = run.ckpt.model_path(f"{name}-request-{n}")
        save_params(after_path, after)
        write_certificate(
            run.run_dir,
            n,
            after_round,
            run.cfg,
            manifest,
            before_path,
            metrics_before,
            {name: (outcome, after_path)},
            (len(run.store.rounds()), run.store.head),
        )
        return request_to_json(result), after

    saved, after = run.ckpt.stage(f"request-{n}", f"{name}-request-{n}", compute)
    if training.state.round == after_round:  # (not when resumed past it: training's checkpoint already goes on)
        training.continue_from(after)
    return request_from_json(saved)


def sequential(run: Run, training: Training) -> tuple[Params, Unlearned]:
    """``forget.schedule``: each request in turn during training, then the end against retraining without every
    departed client."""
    gone: list[int] = []
    requests = []
    for n, req in enumerate(run.cfg.forget.schedule, start=1):
        gone = sorted({*gone, *req.clients})
        requests.append(request(run, training, n, req.round, sorted(req.clients), gone))
    final = training.until(run.cfg.fl.num_rounds)
    save_params(run.ckpt.model_path("trained"), final)
    gone = departed_clients(run.cfg)
    name = requests[0].method
    evaluator = Evaluator(run.cfg, run.data, gone)
    reference, retrained = unlearn_once(run, "retrain", "retrain", evaluator, final)
    costs = [r.result for r in requests]
    total = MethodRun(
        sum(m.wall_s for m in costs),
        sum((m.cost() for m in costs), Cost()),
        [],
        {"requests": len(requests), "sequential": True},
        None,
    )  # fmt: skip
    first_before = run.ckpt.load_pinned(run.ckpt.model_path("before-request-1"))
    return final, Unlearned(
        before=evaluator.evaluate(first_before, retrained),
        methods={
            name: MethodResult.of(gone, total, evaluator.evaluate(final, retrained), reference),
            "retrain": MethodResult.of(gone, reference, evaluator.evaluate(retrained, retrained), reference),
        },
        certificates=[f"certificate-{r.request}.json" for r in requests],
        requests=requests,
    )


# -- the run ---------------------------------------------------------------------------------------


def run_experiment(cfg: Config, trainer: ClientTrainer, run_dir: Path) -> RunResult:
    """Train, handle the unlearning request(s), evaluate; return the run's results (its config aside).

    With ``cfg.resume`` it continues from the checkpoint in ``run_dir``. History and checkpoint files are written
    behind the rounds (one ordered background writer) and are all on disk when this returns."""
    with BackgroundWriter() as writer:
        return _run(cfg, trainer, Path(run_dir), writer)


def _run(cfg: Config, trainer: ClientTrainer, run_dir: Path, writer: FileWriter) -> RunResult:
    data = federated_data(cfg)
    model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)
    warm_up(model)  # the server trains too (distillation, ascent): no method's wall pays torch's first optimizer
    num_params = sum(p.numel() for p in model.parameters())
    log.info(
        "%s: %d train / %d test samples, %d clients (%s), model %s with %d parameters",
        cfg.dataset.name, len(data.train), len(data.test), data.num_clients, cfg.partition.name, cfg.model.name,
        num_params,
    )  # fmt: skip
    ckpt = RunCheckpoint(run_dir, cfg, writer)
    if cfg.resume and ckpt.exists():
        ckpt.load()
    else:
        ckpt.start()
    store = HistoryStore(run_dir / cfg.history.dir, cfg.history.interval, cfg.history.dtype, writer=writer)
    run = Run(cfg, trainer, run_dir, data, store, ckpt, Evaluator(cfg, data, departed_clients(cfg)).test)
    training = Training(run, get_params(model))
    if cfg.forget.schedule:
        final, unlearned = sequential(run, training)
    else:
        final = training.until(cfg.fl.num_rounds)
        save_params(ckpt.model_path("trained"), final)
        methods = method_names(cfg, unlearning.registered())
        unlearned = compare(run, methods, final) if cfg.forget.clients else Unlearned()
    history = HistoryInfo(
        store.total_bytes(), len(store.rounds_stored()), store.dtype, store.interval, f"{cfg.history.dir}/"
    )
    return RunResult(
        training=training.result(num_params),
        history=history,
        before_unlearning=unlearned.before,
        unlearning=unlearned.methods,
        final_metrics=None if unlearned.methods is not None else Evaluator(cfg, data, []).evaluate(final),
        certificates=unlearned.certificates,
        requests=unlearned.requests,
        references=unlearned.references,
    )
