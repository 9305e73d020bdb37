"""Typed results of a run, and ``results.json`` — the stable contract (field names in README → Results).

``RunResult`` is what a run returns; ``to_json`` is the one place it becomes results.json, ``load`` the one
place results.json becomes a ``RunResult`` again (reports, ``fedunlearn-report``, ``fedunlearn-verify``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedunlearn.evaluation import Metrics
from fedunlearn.fl.fedavg import RoundRecord
from fedunlearn.fl.federation import ClientFailure, Cost
from fedunlearn.history.writer import atomic_write
from fedunlearn.unlearning.base import Stop

RESULTS_FILE = "results.json"


def _number(x: float) -> float | int:
    """An integral float as an int (client-epochs are fractional only where a method trains a share of an epoch)."""
    return int(x) if float(x).is_integer() else float(x)


def ratio(reference: float, value: float) -> float | None:
    """reference / value; None when the method spent nothing (an infinite speed-up)."""
    return reference / value if value > 0 else None


@dataclass(frozen=True)
class Bytes:
    """Model bytes exchanged through Flower: server → clients and clients → server."""

    to_clients: int
    from_clients: int

    @property
    def total(self) -> int:
        return self.to_clients + self.from_clients


FORWARD_SHARE = 1 / 3  # a forward pass alone, in training passes (backward ≈ 2 forwards: 6N vs 2N FLOPs per sample)


@dataclass(frozen=True)
class Compute:
    """A phase's compute in sample-gradient equivalents (SGE): one sample through the model forward and backward
    counts 1, a forward pass alone ⅓ (the backward pass costs about twice the forward's FLOPs; Kaplan et al. 2020:
    6N against 2N FLOPs per sample for N parameters). Parts: the clients' training and forward-only passes on their
    data (received-model losses, federated evaluations, a leaving client's check), the server's on its own data
    (distillation, a stop rule's test evaluation). Not counted, for any method: vector arithmetic on parameters
    (aggregation, calibration, distances, L-BFGS products, selection scores) — O(|θ|) per client and round, the
    order of the aggregation retrain does too, against O(samples · |θ|) for training — and the run's own
    measurements (the metrics, ``evaluation.curves``)."""

    client_training: float
    client_forward: float
    server_training: float
    server_forward: float

    @property
    def sge(self) -> float:
        return self.client_training + self.server_training + FORWARD_SHARE * (self.client_forward + self.server_forward)

    @classmethod
    def of(cls, cost: Cost) -> Compute:
        return cls(cost.client_train_samples, cost.client_forward_samples, cost.server_train_samples,
                   cost.server_forward_samples)  # fmt: skip

    def to_json(self) -> dict[str, float]:
        return {"sge": _number(self.sge), **{k: _number(v) for k, v in dataclasses.asdict(self).items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Compute | None:
        if d is None:
            return None
        return cls(d["client_training"], d["client_forward"], d["server_training"], d["server_forward"])


@dataclass(frozen=True)
class Speedup:
    """Retrain's cost / the method's, measured in the same run (None: the method spent none of it)."""

    client_epochs: float | None
    wall: float | None
    bytes: float | None
    compute: float | None = None


@dataclass(frozen=True)
class MethodRun:
    """What a method did, before evaluation: what a checkpoint keeps of it (its model aside)."""

    wall_s: float
    cost: Cost
    recovery_rounds: list[RoundRecord]
    info: dict[str, Any]
    stop: Stop | None
    exact: bool | None = None  # an exact method (retrain, rollback): whether every client it asked replied


@dataclass(frozen=True)
class MethodResult:
    """One method's entry under ``unlearning`` (or one sequential request's)."""

    clients: list[int]
    wall_s: float
    client_epochs: float
    client_updates: int
    rounds: int
    bytes: Bytes
    speedup_vs_retrain: Speedup | None
    metrics: Metrics
    recovery_rounds: list[RoundRecord]
    info: dict[str, Any]
    stop: Stop | None = None
    exact: bool | None = None  # None: an approximate method; False: an exact one that missed a crashed client
    compute: Compute | None = None

    @classmethod
    def of(cls, clients: list[int], run: MethodRun, metrics: Metrics, reference: MethodRun | None) -> MethodResult:
        c = run.cost
        speedup = None
        if reference is not None:
            r = reference.cost
            speedup = Speedup(
                ratio(r.client_epochs, c.client_epochs),
                ratio(reference.wall_s, run.wall_s),
                ratio(r.bytes_to_clients + r.bytes_from_clients, c.bytes_to_clients + c.bytes_from_clients),
                ratio(Compute.of(r).sge, Compute.of(c).sge),
            )
        return cls(
            clients,
            run.wall_s,
            c.client_epochs,
            c.client_updates,
            c.rounds,
            Bytes(c.bytes_to_clients, c.bytes_from_clients),
            speedup,
            metrics,
            run.recovery_rounds,
            run.info,
            run.stop,
            run.exact,
            Compute.of(c),
        )

    def cost(self) -> Cost:
        """The phase's Cost again (sequential requests add theirs up)."""
        compute = self.compute or Compute(0.0, 0.0, 0.0, 0.0)
        return Cost(
            rounds=self.rounds, client_updates=self.client_updates, client_epochs=self.client_epochs,
            bytes_to_clients=self.bytes.to_clients, bytes_from_clients=self.bytes.from_clients,
            client_train_samples=compute.client_training, client_forward_samples=compute.client_forward,
            server_train_samples=compute.server_training, server_forward_samples=compute.server_forward,
        )  # fmt: skip


@dataclass(frozen=True)
class RequestResult:
    """One ``forget.schedule`` request: who left after which round, and what the method did."""

    request: int
    after_round: int
    method: str
    forgotten_so_far: list[int]
    metrics_before: Metrics
    result: MethodResult


@dataclass(frozen=True)
class Divergence:
    round: int
    reason: str


@dataclass(frozen=True)
class TrainingResult:
    rounds: list[RoundRecord]
    wall_s: float
    client_epochs: float
    client_updates: int
    num_parameters: int
    bytes: Bytes
    diverged: Divergence | None = None
    compute: Compute | None = None


@dataclass(frozen=True)
class HistoryInfo:
    bytes: int
    rounds_stored: int
    dtype: str
    interval: int
    path: str


@dataclass(frozen=True)
class RunResult:
    training: TrainingResult
    history: HistoryInfo
    before_unlearning: Metrics | None = None
    unlearning: dict[str, MethodResult] | None = None
    final_metrics: Metrics | None = None
    certificates: list[str] | None = None
    requests: list[RequestResult] | None = None
    placement: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    references: dict[str, Any] | None = None  # evaluation.references: seeds, models trained, their cost

    @property
    def forgotten(self) -> list[int]:
        return next(iter(self.unlearning.values())).clients if self.unlearning else []


# -- results.json -----------------------------------------------------------------------------------


def _round(r: RoundRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "round": r.round,
        "test_accuracy": r.test_accuracy,
        "test_loss": r.test_loss,
        "wall_s": r.wall_s,
        "clients": r.clients,
    }
    if r.failed_clients is not None:
        out["failed_clients"] = r.failed_clients
    if r.failures is not None:
        out["failures"] = [{"client": f.cid, "error": f.error} for f in r.failures]
    out["phase"], out["unit"] = r.phase, r.unit
    return out


def _method(m: MethodResult) -> dict[str, Any]:
    speed = m.speedup_vs_retrain
    return {
        "clients": m.clients,
        "wall_s": m.wall_s,
        "client_epochs": _number(m.client_epochs),
        "client_updates": m.client_updates,
        "rounds": m.rounds,
        "bytes": dataclasses.asdict(m.bytes),
        "speedup_vs_retrain": None if speed is None else dataclasses.asdict(speed),
        "metrics": m.metrics,
        "recovery_rounds": [_round(r) for r in m.recovery_rounds],
        "info": m.info,
        "stop": None if m.stop is None else dataclasses.asdict(m.stop),
        "exact": m.exact,
        "compute": None if m.compute is None else m.compute.to_json(),
    }


def request_to_json(r: RequestResult) -> dict[str, Any]:
    return {
        "request": r.request,
        "after_round": r.after_round,
        **_method(r.result),
        "forgotten_so_far": r.forgotten_so_far,
        "method": r.method,
        "metrics_before": r.metrics_before,
    }


def finite(value: Any) -> Any:
    """JSON has no inf/nan: they become null (a non-finite loss is also reported as training.diverged)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def to_json(run: RunResult) -> dict[str, Any]:
    """The results.json document of ``run``."""
    t = run.training
    out: dict[str, Any] = {
        "config": run.config,
        "training": {
            "rounds": [_round(r) for r in t.rounds],
            "wall_s": t.wall_s,
            "client_epochs": _number(t.client_epochs),
            "client_updates": t.client_updates,
            "num_parameters": t.num_parameters,
            "bytes": dataclasses.asdict(t.bytes),
            "diverged": None if t.diverged is None else dataclasses.asdict(t.diverged),
            "compute": None if t.compute is None else t.compute.to_json(),
        },
        "history": dataclasses.asdict(run.history),
    }
    if run.requests is not None:
        out["requests"] = [request_to_json(r) for r in run.requests]
    if run.before_unlearning is not None:
        out["before_unlearning"] = {"metrics": run.before_unlearning}
    if run.unlearning is not None:
        out["unlearning"] = {name: _method(m) for name, m in run.unlearning.items()}
    if run.final_metrics is not None:
        out["final_metrics"] = run.final_metrics
    if run.certificates is not None:
        out["certificates"] = run.certificates
    if run.placement is not None:
        out["placement"] = run.placement
    if run.references is not None:
        out["references"] = run.references
    return dict(finite(out))


def _round_of(d: dict[str, Any]) -> RoundRecord:
    failures = d.get("failures")
    return RoundRecord(
        d["round"],
        d["test_accuracy"],
        d["test_loss"],
        d["wall_s"],
        list(d["clients"]),
        d.get("failed_clients"),
        None if failures is None else [ClientFailure(f["client"], f["error"]) for f in failures],
        d.get("phase", ""),
        d.get("unit", "round"),
    )


def _method_of(d: dict[str, Any]) -> MethodResult:
    speed, stop, nbytes = d.get("speedup_vs_retrain"), d.get("stop"), d.get("bytes") or {}
    return MethodResult(
        list(d["clients"]),
        d["wall_s"],
        d["client_epochs"],
        d.get("client_updates", 0),
        d["rounds"],
        Bytes(nbytes.get("to_clients", 0), nbytes.get("from_clients", 0)),
        None
        if speed is None
        else Speedup(speed.get("client_epochs"), speed.get("wall"), speed.get("bytes"), speed.get("compute")),
        dict(d["metrics"]),
        [_round_of(r) for r in d.get("recovery_rounds", [])],
        dict(d.get("info", {})),
        None if stop is None else Stop(stop["rule"], stop["after"]),
        d.get("exact"),
        Compute.from_json(d.get("compute")),
    )


def request_from_json(r: dict[str, Any]) -> RequestResult:
    return RequestResult(
        r["request"], r["after_round"], r["method"], list(r["forgotten_so_far"]), r["metrics_before"], _method_of(r)
    )


def from_json(doc: dict[str, Any]) -> RunResult:
    """A RunResult from a results.json document (older files: fields they lack take empty values)."""
    t, h = doc["training"], doc["history"]
    nbytes, diverged = t.get("bytes") or {}, t.get("diverged")
    requests = doc.get("requests")
    return RunResult(
        training=TrainingResult(
            [_round_of(r) for r in t["rounds"]],
            t["wall_s"],
            t["client_epochs"],
            t.get("client_updates", 0),
            t.get("num_parameters", 0),
            Bytes(nbytes.get("to_clients", 0), nbytes.get("from_clients", 0)),
            None if diverged is None else Divergence(diverged["round"], diverged["reason"]),
            Compute.from_json(t.get("compute")),
        ),
        history=HistoryInfo(h["bytes"], h["rounds_stored"], h["dtype"], h["interval"], h["path"]),
        before_unlearning=doc["before_unlearning"]["metrics"] if "before_unlearning" in doc else None,
        unlearning={k: _method_of(v) for k, v in doc["unlearning"].items()} if "unlearning" in doc else None,
        final_metrics=doc.get("final_metrics"),
        certificates=doc.get("certificates"),
        requests=None if requests is None else [request_from_json(r) for r in requests],
        placement=doc.get("placement"),
        config=doc.get("config", {}),
        references=doc.get("references"),
    )


def method_run_to_json(m: MethodRun) -> dict[str, Any]:
    """A MethodRun as the JSON a checkpoint keeps."""
    return {
        "wall_s": m.wall_s,
        "cost": dataclasses.asdict(m.cost),
        "recovery_rounds": [_round(r) for r in m.recovery_rounds],
        "info": m.info,
        "stop": None if m.stop is None else dataclasses.asdict(m.stop),
        "exact": m.exact,
    }


def method_run_from_json(d: dict[str, Any]) -> MethodRun:
    stop = d["stop"]
    return MethodRun(
        d["wall_s"],
        Cost(**d["cost"]),
        [_round_of(r) for r in d["recovery_rounds"]],
        d["info"],
        None if stop is None else Stop(stop["rule"], stop["after"]),
        d.get("exact"),
    )


def rounds_to_json(rounds: list[RoundRecord]) -> list[dict[str, Any]]:
    return [_round(r) for r in rounds]


def rounds_from_json(rounds: list[dict[str, Any]]) -> list[RoundRecord]:
    return [_round_of(r) for r in rounds]


def write_results(run_dir: Path, run: RunResult) -> Path:
    path = Path(run_dir) / RESULTS_FILE
    atomic_write(path, json.dumps(to_json(run), indent=2).encode())
    return path


def load(path: Path) -> RunResult:
    return from_json(json.loads(Path(path).read_text()))
