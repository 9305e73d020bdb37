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

from fedunlearn.config import Config, departed_clients, method_names
from fedunlearn.core.client_stats import ServerStat, declared_stats, on_clients, stat
from fedunlearn.core.fedavg import Evaluate, RoundLog, divergence, replay_rounds
from fedunlearn.core.federation import ClientTrainer, Cost, CostMeter, Replies
from fedunlearn.core.params import Params, get_params
from fedunlearn.core.task import TrainPlan, warm_up
from fedunlearn.data import FederatedData, federated_data
from fedunlearn.evaluation import Evaluator, Metrics
from fedunlearn.experiment.certificate import write_certificate
from fedunlearn.experiment.checkpoint import RunCheckpoint, save_params
from fedunlearn.experiment.references import report_to_json, train_references
from fedunlearn.experiment.schedule import training_schedule
from fedunlearn.history import HistoryStore
from fedunlearn.history.codecs import Codec
from fedunlearn.history.writer import BackgroundWriter, FileWriter
from fedunlearn.models import build_model
from fedunlearn.results import (
    Bytes,
    Compute,
    Divergence,
    HistoryInfo,
    MethodRecord,
    MethodResult,
    RequestResult,
    RunResult,
    TrainingResult,
    decode,
    encode,
)
from fedunlearn.unlearning import UnlearningContext, create, method_class, registered

log = logging.getLogger("fedunlearn")


class TrainingDiverged(RuntimeError):
    """Training diverged and ``fl.on_divergence=error`` asks to stop."""


@dataclass
class Experiment:
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


def recorded_stats(cfg: Config) -> frozenset[str]:
    """The per-client stats training records (``history.client_stats``): auto = those the requested methods read."""
    if cfg.history.client_stats == "all":
        return frozenset(declared_stats())
    if cfg.history.client_stats == "none":
        return frozenset()
    names = method_names(cfg, registered())
    return frozenset().union(*(method_class(n).client_stats for n in names))


class Training:
    """The train stage: federated training in segments (up to each request, then to the end), every round's
    M^t and updates recorded in the history, checkpointed after every round."""

    def __init__(self, exp: Experiment, initial: Params) -> None:
        self.exp = exp
        self.meter = CostMeter(exp.trainer)
        self.state = TrainingState()
        self.params = initial
        saved = exp.ckpt.training()
        if saved is None:
            exp.store.truncate(0)  # killed before its first checkpoint: start the history over
            return
        progress, self.params = saved
        self.state = decode(TrainingState, progress)
        exp.store.truncate(self.state.round)  # a round killed half-way is recorded again
        log.info("resuming after training round %d of %d", self.state.round, exp.cfg.fl.num_rounds)

    def continue_from(self, params: Params) -> None:
        """Go on from ``params`` (a sequential request's unlearned model) instead of the last round's model."""
        self.params = params

    def until(self, last_round: int) -> Params:
        """Train up to and including ``last_round`` (nothing when already there)."""
        if self.state.round >= last_round:
            return self.params
        cfg = self.exp.cfg
        base, base_cost = dataclasses.replace(self.state), self.state.cost
        self.meter.cost = Cost()
        t0 = time.perf_counter()

        stats = recorded_stats(cfg)

        def record(round_: int, params: Params, new: Params, deltas: dict[int, Params], replies: Replies) -> None:
            values: dict[str, dict[int, float]] = {}
            for name in sorted(stats):
                kind = stat(name)
                if isinstance(kind, ServerStat):
                    values[name] = kind.compute(new, params, deltas)
                else:
                    values[name] = {u.cid: u.stats[name] for u in replies if name in u.stats}
            self.exp.store.record_round(round_, params, deltas, {u.cid: u.num_examples for u in replies}, values)

        def checkpoint(round_: int, params: Params, rounds: RoundLog) -> None:
            self.state.round, self.state.rounds = round_, rounds
            self.state.wall_s = base.wall_s + time.perf_counter() - t0
            self.state.cost = base_cost + self.meter.cost
            if self.state.diverged is None:
                self._guard(rounds)
            self.params = params
            self.exp.ckpt.save_training(encode(self.state), params)

        schedule = [(t, c) for t, c in training_schedule(cfg) if self.state.round < t <= last_round]
        self.params, _ = replay_rounds(
            self.meter,
            self.params,
            schedule,
            TrainPlan.from_config(cfg, stats=on_clients(stats)),
            cfg.seed,
            self.exp.test,
            "train",
            on_round=record if cfg.history.record else None,
            after_round=checkpoint,
            log_so_far=RoundLog(self.state.rounds),
            total=cfg.fl.num_rounds,
        )
        return self.params

    def _guard(self, rounds: RoundLog) -> None:
        reason = divergence(rounds, self.exp.data.num_classes)
        if reason is None:
            return
        if self.exp.cfg.fl.on_divergence == "error":
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
            rounds=list(s.rounds), wall_s=s.wall_s, client_epochs=s.cost.client_epochs,
            client_updates=s.cost.client_updates, num_parameters=num_parameters,
            bytes=Bytes(to_clients=s.cost.bytes_to_clients, from_clients=s.cost.bytes_from_clients),
            diverged=s.diverged, compute=Compute.of(s.cost),
        )  # fmt: skip


# -- unlearn, evaluate -------------------------------------------------------------------------------


def unlearn(
    exp: Experiment, name: str, evaluator: Evaluator, model: Params, reference: float | None = None
) -> tuple[MethodRecord, Params]:
    """The unlearn stage of one method: ``name`` removes the evaluator's forgotten clients from ``model``;
    ``reference``: retrain's test accuracy, when it ran first."""
    forget = evaluator.forget
    log.info("unlearning clients %s with %s", forget, name)
    exact = method_class(name).exact
    meter = CostMeter(exp.trainer, exact=exact and exp.cfg.fl.exact_reference)
    ctx = UnlearningContext(
        cfg=exp.cfg, history=exp.store, forget=forget, clients=meter, trained=model, evaluate=evaluator.test,
        data=exp.data, evaluate_remaining=evaluator.on_remaining, reference_accuracy=reference,
        curves=exp.cfg.evaluation.curves,
    )  # fmt: skip
    t0 = time.perf_counter()
    outcome = create(name, exp.cfg).unlearn(ctx)
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
    work = MethodRecord(
        wall_s=wall, cost=meter.cost, recovery_rounds=list(outcome.rounds), info=outcome.info, stop=outcome.stop,
        exact=exactness,
    )  # fmt: skip
    return work, outcome.params


def unlearn_once(
    exp: Experiment, key: str, name: str, evaluator: Evaluator, model: Params, reference: float | None = None
) -> tuple[MethodRecord, Params]:
    """``unlearn`` as a resumable stage: saved as models/<key>.safetensors."""

    def compute() -> tuple[dict[str, Any], Params]:
        work, params = unlearn(exp, name, evaluator, model, reference)
        return encode(work), params

    saved, params = exp.ckpt.stage(key, key, compute)
    return decode(MethodRecord, saved), params


@dataclass(frozen=True)
class Unlearned:
    """What the request stages give the run's results."""

    before: Metrics | None = None
    methods: dict[str, MethodResult] | None = None
    certificates: list[str] | None = None
    requests: list[RequestResult] | None = None
    references: dict[str, Any] | None = None


def compare(exp: Experiment, methods: list[str], trained: Params) -> Unlearned:
    """``forget.clients``: every method on the same trained model and history, side by side, and a certificate."""
    forget = sorted(exp.cfg.forget.clients)
    evaluator = Evaluator(exp.cfg, exp.data, forget)
    done: dict[str, tuple[MethodRecord, Params]] = {}
    accuracy = None
    for name in sorted(methods, key=lambda n: n != "retrain"):  # retrain first: the others are compared to it
        done[name] = unlearn_once(exp, name, name, evaluator, trained, accuracy)
        if name == "retrain":
            accuracy = evaluator.test(done[name][1])[0]
    references = None
    if exp.cfg.evaluation.references:
        report = train_references(exp.cfg, exp.trainer, forget, evaluator, exp.data.input_shape, exp.data.num_classes)
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
    manifest = exp.store.freeze_manifest("manifest-request-1.json")
    certified = {n: (results[n], exp.ckpt.model_path(n)) for n in methods}
    trained_path = exp.ckpt.model_path("trained")
    chain = (len(exp.store.rounds()), exp.store.head)
    path = write_certificate(
        exp.run_dir, 1, exp.cfg.fl.num_rounds, exp.cfg, manifest, trained_path, before, certified, chain
    )
    return Unlearned(before, results, [path.name], references=references)


def request(
    exp: Experiment, training: Training, n: int, after_round: int, clients: list[int], gone: list[int]
) -> RequestResult:
    """``forget.schedule`` request ``n`` as a resumable stage: train up to its round, unlearn every client departed
    so far from that model with the history so far, certify; training then goes on from the unlearned model."""
    name = method_names(exp.cfg, registered())[0]

    def compute() -> tuple[dict[str, Any], Params]:
        evaluator = Evaluator(exp.cfg, exp.data, gone)
        before = training.until(after_round)
        before_path = exp.ckpt.model_path(f"before-request-{n}")
        exp.ckpt.save_pinned(before_path, before)
        log.info("request %d after round %d: client(s) %s leave", n, after_round, clients)
        work, after = unlearn(exp, name, evaluator, before)
        metrics_before = evaluator.evaluate(before)
        outcome = MethodResult.of(clients, work, evaluator.evaluate(after), None)
        result = RequestResult(
            request=n, after_round=after_round, result=outcome, forgotten_so_far=gone, method=name,
            metrics_before=metrics_before,
        )  # fmt: skip
        manifest = exp.store.freeze_manifest(f"manifest-request-{n}.json")
        after_path = exp.ckpt.model_path(f"{name}-request-{n}")
        save_params(after_path, after)
        write_certificate(
            exp.run_dir,
            n,
            after_round,
            exp.cfg,
            manifest,
            before_path,
            metrics_before,
            {name: (outcome, after_path)},
            (len(exp.store.rounds()), exp.store.head),
        )
        return encode(result), after

    saved, after = exp.ckpt.stage(f"request-{n}", f"{name}-request-{n}", compute)
    if training.state.round == after_round:  # (not when resumed past it: training's checkpoint already goes on)
        training.continue_from(after)
    return decode(RequestResult, saved)


def sequential(exp: Experiment, training: Training) -> tuple[Params, Unlearned]:
    """``forget.schedule``: each request in turn during training, then the end against retraining without every
    departed client."""
    gone: list[int] = []
    requests = []
    for n, req in enumerate(exp.cfg.forget.schedule, start=1):
        gone = sorted({*gone, *req.clients})
        requests.append(request(exp, training, n, req.round, sorted(req.clients), gone))
    final = training.until(exp.cfg.fl.num_rounds)
    save_params(exp.ckpt.model_path("trained"), final)
    gone = departed_clients(exp.cfg)
    name = requests[0].method
    evaluator = Evaluator(exp.cfg, exp.data, gone)
    reference, retrained = unlearn_once(exp, "retrain", "retrain", evaluator, final)
    costs = [r.result for r in requests]
    total = MethodRecord(
        wall_s=sum(m.wall_s for m in costs), cost=sum((m.cost() for m in costs), Cost()), recovery_rounds=[],
        info={"requests": len(requests), "sequential": True}, stop=None,
    )  # fmt: skip
    first_before = exp.ckpt.load_pinned(exp.ckpt.model_path("before-request-1"))
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
    codec = Codec(cfg.history.codec, cfg.history.int8_block, cfg.history.topk_fraction)
    store = HistoryStore(run_dir / cfg.history.dir, cfg.history.interval, cfg.history.dtype, writer=writer, codec=codec)
    exp = Experiment(
        cfg=cfg, trainer=trainer, run_dir=run_dir, data=data, store=store, ckpt=ckpt,
        test=Evaluator(cfg, data, departed_clients(cfg)).test,
    )  # fmt: skip
    training = Training(exp, get_params(model))
    if cfg.forget.schedule:
        final, unlearned = sequential(exp, training)
    else:
        final = training.until(cfg.fl.num_rounds)
        store.sync()
        save_params(ckpt.model_path("trained"), final)
        methods = method_names(cfg, registered())
        unlearned = compare(exp, methods, final) if cfg.forget.clients else Unlearned()
    store.sync()
    history = HistoryInfo(
        bytes=store.total_bytes(), rounds_stored=len(store.rounds_stored()), dtype=store.dtype,
        interval=store.interval, path=f"{cfg.history.dir}/", codec=store.codec.describe(),
    )  # fmt: skip
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
