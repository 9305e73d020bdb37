"""How the server asks clients to train: one protocol, what a round's replies hold, and what they cost.

Unlearning methods and the training loop receive a ``ClientTrainer``; in a run it is the Flower federation
(``server_app.FlowerTrainer``: real messages to ClientApps on Ray), in unit tests the in-process
``LocalTrainer``. Both apply the same failure policy: simulated dropouts are left out of the round, a ClientApp
that raises is a failure that stops the run unless ``fl.max_client_failures`` tolerates it.
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Protocol

import torch

from fedunlearn.core.client_stats import client_side
from fedunlearn.core.params import Params, nbytes
from fedunlearn.core.task import ClientUpdate, TaskConfig, TrainPlan, drops_out, run_client


@dataclass(frozen=True)
class ClientFailure:
    """A ClientApp that raised: its one-line error, and the traceback for the log file."""

    cid: int = field(metadata={"json_name": "client"})  # metadata: how fedunlearn.results.codec writes it
    error: str
    detail: str = field(default="", metadata={"json_skip": True})  # for the log file only


class ClientCrashed(RuntimeError):
    """More ClientApps raised in one round than ``fl.max_client_failures`` allows."""

    def __init__(self, group: str, failure: ClientFailure, tolerated: int) -> None:
        tag, _, round_ = group.rpartition("-")
        where = f"round {round_} of {tag}" if round_.isdigit() else group
        more = f" (fl.max_client_failures={tolerated} tolerated)" if tolerated else ""
        super().__init__(f"client {failure.cid} failed in {where}{more}: {failure.error}")
        self.failure = failure


class InexactReference(ClientCrashed):
    """A ClientApp raised while an exact reference (retrain, rollback) trained: tolerating it would leave that
    client's update out of the model every other method is measured against."""


class Interrupted(RuntimeError):
    """The run was asked to stop (SIGTERM, Ctrl-C, or the simulation engine failed)."""


class SimulationError(RuntimeError):
    """Ray or Flower's simulation engine failed (not the run's own code)."""


class Stopped(Interrupted):
    """The run stopped on a signal; ``signal`` names it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class Replies(list[ClientUpdate]):
    """The updates of the clients that replied (sorted by id), and who did not: simulated dropouts and
    tolerated ClientApp failures."""

    def __init__(
        self,
        updates: Iterable[ClientUpdate] = (),
        dropped: Iterable[int] = (),
        failures: Iterable[ClientFailure] = (),
    ) -> None:
        super().__init__(sorted(updates, key=lambda u: u.cid))
        self.dropped = sorted(dropped)
        self.failures = sorted(failures, key=lambda f: f.cid)


def settle(group: str, replies: Replies, max_failures: int) -> Replies:
    """``replies``, or ClientCrashed when more clients failed than tolerated."""
    if len(replies.failures) > max_failures:
        raise ClientCrashed(group, replies.failures[0], max_failures)
    return replies


class ClientTrainer(Protocol):
    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        """Train ``params`` on each client in ``seeds`` (client id → shuffling seed); ``group`` names the round
        (``<phase>-<round>``) in logs and errors."""
        ...


class LocalTrainer:
    """The ClientApp's training, in this process: for unit tests and quick experiments without Ray."""

    def __init__(self, task: TaskConfig, max_failures: int = 0, device: str = "cpu") -> None:
        self.task = task
        self.max_failures = max_failures
        self.device = torch.device(device)  # e.g. "cuda": benchmarks on a GPU machine without Ray

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        updates, dropped, failures = [], [], []
        for cid, seed in sorted(seeds.items()):
            if drops_out(seed, self.task.dropout_rate):
                dropped.append(cid)
                continue
            try:
                updates.append(run_client(self.task, cid, params, plan, seed, self.device, group))
            except Exception as err:  # a client's crash is reported like the ClientApp reports it
                failures.append(ClientFailure(cid, f"{type(err).__name__}: {err}", traceback.format_exc()))
        return settle(group, Replies(updates, dropped, failures), self.max_failures)


@dataclass
class Cost:
    """What a phase spent: federated rounds, client replies, epochs of local SGD, the model bytes sent each way,
    and its compute in samples: passes of a sample through the model with a backward pass (training) and without
    (forward only), by the clients on their data and by the server on its own (see ``Compute``)."""

    rounds: int = 0
    client_updates: int = 0
    client_epochs: float = 0.0
    bytes_to_clients: int = 0
    bytes_from_clients: int = 0
    client_train_samples: float = 0.0
    client_forward_samples: float = 0.0
    server_train_samples: float = 0.0
    server_forward_samples: float = 0.0

    def __sub__(self, other: Cost) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(Cost)})

    def __add__(self, other: Cost) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Cost)})


@dataclass
class CostMeter:
    """Wraps a trainer and counts what it spent (``cost``) and how many ClientApp failures its rounds tolerated
    (``failures``); ``exact``: a failure is not tolerated (InexactReference) whatever the trainer allows."""

    inner: ClientTrainer
    cost: Cost = field(default_factory=Cost)
    exact: bool = False
    failures: int = 0

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        replies = self.inner.train(params, seeds, plan, group)
        if replies.failures and self.exact:
            raise InexactReference(group, replies.failures[0], 0)
        self.failures += len(replies.failures)
        self.cost.rounds += 1
        self.cost.client_updates += len(replies)
        self.cost.client_epochs += sum(u.epochs for u in replies)
        self.cost.client_train_samples += sum(u.epochs * u.num_examples for u in replies)
        if plan.stats:  # each client evaluated the model it received on its data first
            passes = sum(client_side(name).forward_passes for name in plan.stats)
            self.cost.client_forward_samples += passes * sum(u.num_examples for u in replies)
        self.cost.bytes_to_clients += len(seeds) * nbytes(params)
        self.cost.bytes_from_clients += sum(nbytes(u.params) for u in replies)
        return replies

    def charge(
        self,
        epochs: float = 0.0,
        to_clients: int = 0,
        from_clients: int = 0,
        *,
        client_train_samples: float = 0.0,
        client_forward_samples: float = 0.0,
        server_train_samples: float = 0.0,
        server_forward_samples: float = 0.0,
    ) -> None:
        """Work done outside ``train``: a client's computed by the server on its behalf (a leaving client's step,
        a federated evaluation) — its epochs, samples and the model bytes the real exchange would send — and the
        server's own training and forward passes (distillation, a stop rule's test evaluation)."""
        self.cost.client_epochs += epochs
        self.cost.bytes_to_clients += to_clients
        self.cost.bytes_from_clients += from_clients
        self.cost.client_train_samples += client_train_samples
        self.cost.client_forward_samples += client_forward_samples
        self.cost.server_train_samples += server_train_samples
        self.cost.server_forward_samples += server_forward_samples
