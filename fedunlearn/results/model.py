"""Typed results of a run: what results.json holds (its field names are a stable contract, see the docs' Results
page). ``fedunlearn.results.codec`` writes and reads them; how a field is written is said on the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fedunlearn.core.fedavg import RoundRecord
from fedunlearn.core.federation import Cost
from fedunlearn.evaluation import Metrics
from fedunlearn.unlearning.base import Stop

NUMBER: dict[str, Any] = {"number": True}  # written as an int when integral
OPTIONAL: dict[str, Any] = {"omit_none": True}  # left out of results.json when None


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

    client_training: float = field(metadata=NUMBER)
    client_forward: float = field(metadata=NUMBER)
    server_training: float = field(metadata=NUMBER)
    server_forward: float = field(metadata=NUMBER)

    __json_properties__: ClassVar[tuple[str, ...]] = ("sge",)

    @property
    def sge(self) -> float:
        return self.client_training + self.server_training + FORWARD_SHARE * (self.client_forward + self.server_forward)

    @classmethod
    def of(cls, cost: Cost) -> Compute:
        return cls(
            client_training=cost.client_train_samples, client_forward=cost.client_forward_samples,
            server_training=cost.server_train_samples, server_forward=cost.server_forward_samples,
        )  # fmt: skip


@dataclass(frozen=True)
class Speedup:
    """Retrain's cost / the method's, measured in the same run (None: the method spent none of it)."""

    client_epochs: float | None
    wall: float | None
    bytes: float | None
    compute: float | None = None


@dataclass(frozen=True)
class MethodRecord:
    """What a method did, before evaluation (its record): what a checkpoint keeps of it (its model aside)."""

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
    client_epochs: float = field(metadata=NUMBER)
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
    def of(
        cls, clients: list[int], work: MethodRecord, metrics: Metrics, reference: MethodRecord | None
    ) -> MethodResult:
        c = work.cost
        speedup = None
        if reference is not None:
            r = reference.cost
            speedup = Speedup(
                client_epochs=ratio(r.client_epochs, c.client_epochs),
                wall=ratio(reference.wall_s, work.wall_s),
                bytes=ratio(r.bytes_to_clients + r.bytes_from_clients, c.bytes_to_clients + c.bytes_from_clients),
                compute=ratio(Compute.of(r).sge, Compute.of(c).sge),
            )
        return cls(
            clients=clients, wall_s=work.wall_s, client_epochs=c.client_epochs, client_updates=c.client_updates,
            rounds=c.rounds, bytes=Bytes(to_clients=c.bytes_to_clients, from_clients=c.bytes_from_clients),
            speedup_vs_retrain=speedup, metrics=metrics, recovery_rounds=work.recovery_rounds, info=work.info,
            stop=work.stop, exact=work.exact, compute=Compute.of(c),
        )  # fmt: skip

    def cost(self) -> Cost:
        """The phase's Cost again (sequential requests add theirs up)."""
        compute = self.compute or Compute(client_training=0, client_forward=0, server_training=0, server_forward=0)
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
    result: MethodResult = field(metadata={"flatten": True})  # its fields sit beside the request's
    forgotten_so_far: list[int]
    method: str
    metrics_before: Metrics


@dataclass(frozen=True)
class Divergence:
    round: int
    reason: str


@dataclass(frozen=True)
class TrainingResult:
    rounds: list[RoundRecord]
    wall_s: float
    client_epochs: float = field(metadata=NUMBER)
    client_updates: int = 0
    num_parameters: int = 0
    bytes: Bytes = field(default_factory=lambda: Bytes(to_clients=0, from_clients=0))
    diverged: Divergence | None = None
    compute: Compute | None = None


@dataclass(frozen=True)
class HistoryInfo:
    bytes: int
    rounds_stored: int
    dtype: str
    interval: int
    path: str
    codec: dict[str, Any] = field(default_factory=lambda: {"name": "none"})  # how client updates are stored


@dataclass(frozen=True, kw_only=True)
class RunResult:
    config: dict[str, Any] = field(default_factory=dict)
    training: TrainingResult
    history: HistoryInfo
    requests: list[RequestResult] | None = field(default=None, metadata=OPTIONAL)
    before_unlearning: Metrics | None = field(default=None, metadata={**OPTIONAL, "wrap": "metrics"})
    unlearning: dict[str, MethodResult] | None = field(default=None, metadata=OPTIONAL)
    final_metrics: Metrics | None = field(default=None, metadata=OPTIONAL)
    certificates: list[str] | None = field(default=None, metadata=OPTIONAL)
    placement: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    references: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)  # evaluation.references: seeds, ...

    @property
    def forgotten(self) -> list[int]:
        return next(iter(self.unlearning.values())).clients if self.unlearning else []
