"""The interface every unlearning method implements, and what it is given.

A method is one module and one YAML, as a Flower strategy is one class: a dataclass of its hyper-parameters
(``HParams``; each field a ``spec`` with what it allows; values in ``conf/unlearning/<name>.yaml``), an optional
``validate(cfg, methods)`` for rules that involve other keys (the history it needs, intervals), and
``unlearn(ctx)``. ``@register`` makes it a choice
of ``unlearning.methods``; nothing else lists it.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from torch import nn

from fedunlearn.config import Config, ConfigError
from fedunlearn.core.fedavg import Curve, Evaluate, RoundLog, Unit, no_curve, replay_rounds, sample_clients
from fedunlearn.core.federation import CostMeter, Replies
from fedunlearn.core.params import Params, nbytes
from fedunlearn.core.task import TrainPlan
from fedunlearn.data import FederatedData
from fedunlearn.history import HistoryStore
from fedunlearn.models import build_model
from fedunlearn.seeds import Stream, rng
from fedunlearn.unlearning.recovery import RecoveryHParams

P = TypeVar("P")


@dataclass(frozen=True)
class Stop:
    """Which rule ended a method's iterations, and after how many steps or rounds (results.json ``stop``)."""

    rule: str
    after: int


@dataclass
class UnlearningOutcome:
    params: Params
    rounds: RoundLog = field(default_factory=RoundLog)
    info: dict[str, Any] = field(default_factory=dict)
    stop: Stop | None = None


@dataclass
class UnlearningContext:
    """One unlearning request: the trained model, its history, who leaves, and the federation.

    ``clients`` reaches the remaining clients' ClientApps through the same simulation and meters what they
    spend; a method reports only what is specific to it in ``info``.
    """

    cfg: Config
    history: HistoryStore
    forget: list[int]
    clients: CostMeter  # the federation's clients, through Flower, their work metered
    trained: Params
    evaluate: Evaluate  # (test accuracy, test loss)
    data: FederatedData
    evaluate_remaining: Evaluate | None = None  # (accuracy, loss) on the remaining clients' own data
    reference_accuracy: float | None = None  # retrain's test accuracy, when retrain ran first in this run
    curves: bool = True  # evaluate every step and round (evaluation.curves); otherwise only the final model
    evaluations: int = 0  # federated evaluations done so far (each: every remaining client on its own data)
    evaluation_s: float = 0.0  # and their wall time (client work that client-epochs do not count)

    @property
    def curve(self) -> Curve:
        """What each logged step or round is evaluated with: the test set, or nothing."""
        return self.evaluate if self.curves else no_curve

    def plan(self, epochs: float | None = None, max_grad_norm: float | None = None) -> TrainPlan:
        """Training's local SGD (``fl.*``), with ``epochs`` local epochs and steps clipped to ``max_grad_norm`` if
        given."""
        return TrainPlan.from_config(self.cfg, epochs, max_grad_norm)

    def model(self) -> nn.Module:
        """A fresh model of the run's architecture (to load parameters into)."""
        return build_model(self.cfg.model, self.data.input_shape, self.data.num_classes, self.cfg.seed)

    def remaining(self, round_: int) -> list[int]:
        """Clients that took part in ``round_`` and are not forgotten."""
        gone = set(self.forget)
        return [c for c in self.history.participants(round_) if c not in gone]

    def remaining_clients(self) -> list[int]:
        gone = set(self.forget)
        return [c for c in range(self.cfg.fl.num_clients) if c not in gone]

    def samples_of(self, cids: list[int]) -> int:
        """How many training samples ``cids`` hold together."""
        return sum(len(self.data.partitions[c]) for c in cids)

    @property
    def last_round(self) -> int:
        rounds = self.history.rounds()
        return rounds[-1] if rounds else 0

    def new_rounds(self, count: int) -> list[tuple[int, list[int]]]:
        """``count`` rounds after the history's last, each sampling ``fl.fraction_train`` of the remaining
        clients as training did (stream RECOVERY: the same for every method of a run)."""
        generator = rng(self.cfg.seed, Stream.RECOVERY)
        first = self.last_round + 1
        pool = self.remaining_clients()
        return [(first + i, sample_clients(pool, self.cfg.fl.fraction_train, generator)) for i in range(count)]

    def recover(
        self, params: Params, rounds: int, tag: str, max_grad_norm: float | None = None, max_steps: int | None = None
    ) -> tuple[Params, RoundLog]:
        """``rounds`` FedAvg rounds with the remaining clients from ``params`` (training's local SGD, its steps
        clipped to ``max_grad_norm`` and capped at ``max_steps`` per client if given)."""
        plan = dataclasses.replace(self.plan(max_grad_norm=max_grad_norm), max_steps=max_steps)
        return replay_rounds(
            self.clients, params, self.new_rounds(rounds), plan, self.cfg.seed, self.curve, tag,
            stream=Stream.RECOVERY,
        )  # fmt: skip

    def federated_evaluation(self, params: Params) -> tuple[float, float]:
        """(accuracy, loss) of ``params`` on the remaining clients' own data, each client evaluating on its data:
        the model goes to every remaining client (its bytes are counted), no client trains."""
        if self.evaluate_remaining is None:
            raise ValueError("this context has no federated evaluation (evaluate_remaining)")
        remaining = self.remaining_clients()
        self.clients.charge(
            to_clients=nbytes(params) * len(remaining), client_forward_samples=self.samples_of(remaining)
        )
        t0 = time.perf_counter()
        result = self.evaluate_remaining(params)
        self.evaluations += 1
        self.evaluation_s += time.perf_counter() - t0
        return result

    def recover_until(self, params: Params, recovery: RecoveryHParams, tag: str) -> tuple[Params, RoundLog, Stop]:
        """FedAvg rounds with the remaining clients from ``params`` until ``recovery``'s stop rule holds."""
        cap = recovery.cap(self.last_round)
        if recovery.stop == "rounds":
            params, rounds = self.recover(params, cap, tag, recovery.max_grad_norm)
            return params, rounds, Stop("rounds", cap)
        if recovery.stop == "remaining_accuracy":
            target = self.federated_evaluation(self.trained)[0]

            def reached(p: Params) -> bool:
                return self.federated_evaluation(p)[0] >= target - recovery.tolerance
        else:
            if self.reference_accuracy is None:
                raise ValueError("recovery.stop=retrain_accuracy needs retrain to run first in the same request")
            reference = self.reference_accuracy

            def reached(p: Params) -> bool:
                self.clients.charge(server_forward_samples=len(self.data.test))  # a test evaluation on the server
                return self.evaluate(p)[0] >= reference - recovery.tolerance

        rounds = RoundLog()
        plan = self.plan(max_grad_norm=recovery.max_grad_norm)
        for done, one in enumerate(self.new_rounds(cap)):
            if reached(params):
                return params, rounds, Stop(recovery.stop, done)
            params, rounds = replay_rounds(
                self.clients, params, [one], plan, self.cfg.seed, self.curve, tag,
                log_so_far=rounds, total=self.last_round + cap, stream=Stream.RECOVERY,
            )  # fmt: skip
        return params, rounds, Stop(recovery.stop if reached(params) else "max_rounds", cap)

    def charge_clients(
        self, cids: list[int], epochs: float, params: Params, samples: float, forward_samples: float = 0.0
    ) -> None:
        """Client work the server computes on the clients' behalf (their data, their epochs): ``samples`` trained
        (and ``forward_samples`` passed forward only), the model sent to each of ``cids`` and back once."""
        size = nbytes(params) * len(cids)
        self.clients.charge(
            epochs=epochs, to_clients=size, from_clients=size, client_train_samples=samples,
            client_forward_samples=forward_samples,
        )  # fmt: skip

    def step(
        self,
        rounds: RoundLog,
        tag: str,
        index: int,
        total: int,
        params: Params,
        started: float,
        cids: list[int],
        replies: Replies | None = None,
        unit: Unit = "step",
    ) -> None:
        """Log step ``index`` of ``total`` (begun at ``started``, perf_counter), evaluated if curves are on."""
        accuracy, loss = self.curve(params)
        rounds.add(tag, index, total, accuracy, loss, time.perf_counter() - started, cids, replies, unit)


class UnlearningMethod(ABC, Generic[P]):
    """Removes the forgotten clients' contribution from the trained model."""

    name: ClassVar[str]
    HParams: ClassVar[type[Any]]  # its hyper-parameters: a dataclass of spec() fields
    config_file: ClassVar[Path | str | None] = None  # its YAML; None: conf/unlearning/<name>.yaml in the package
    client_stats: ClassVar[frozenset[str]] = frozenset()  # history stats it reads (history.client_stats=auto)
    exact: ClassVar[bool] = False  # gives retraining's model exactly (retrain, rollback): a reference for the others

    def __init__(self, hparams: P) -> None:
        self.hparams = hparams

    def validate(self, cfg: Config, methods: list[str]) -> None:
        """Rules between this method's parameters and the rest of the config (``methods``: every method the run
        applies); raise ConfigError."""

    @abstractmethod
    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome: ...


# -- rules shared by methods -------------------------------------------------------------------------


def require_every_round(cfg: Config, method: str) -> None:
    """The method reads every round's updates."""
    if cfg.history.interval != 1:
        raise ConfigError("history.interval", f"must be 1 for {method} (it reads every round's updates)")


def require_stored(cfg: Config, key: str, interval: int) -> None:
    """A replay interval the history can serve: a multiple of ``history.interval``."""
    if interval % cfg.history.interval != 0:
        raise ConfigError(
            key,
            f"{interval} is not a multiple of history.interval={cfg.history.interval}; "
            "the history does not store the rounds it replays",
        )
