"""How the server asks clients to train: one protocol, a Flower implementation and an in-process one.

Unlearning methods receive a ``ClientTrainer``; in a run it is the Flower federation
(real messages to ClientApps on Ray), in unit tests the in-process ``LocalTrainer``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from flwr.app import Message, MessageType, RecordDict
from flwr.serverapp import Grid

from fedunlearn.config import Config
from fedunlearn.data import FederatedData
from fedunlearn.fl.client_app import drops_out, number, params_to_record, record_to_params, train_config
from fedunlearn.fl.local_training import train_epochs
from fedunlearn.fl.params import Params, get_params, set_params
from fedunlearn.models import build_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainPlan:
    """Local training hyper-parameters sent with a round."""

    local_epochs: int
    lr: float
    batch_size: int
    momentum: float

    @classmethod
    def from_config(cls, cfg: Config, local_epochs: int | None = None) -> TrainPlan:
        return cls(
            local_epochs=cfg.fl.local_epochs if local_epochs is None else local_epochs,
            lr=cfg.fl.lr,
            batch_size=cfg.fl.batch_size,
            momentum=cfg.fl.momentum,
        )


@dataclass(frozen=True)
class ClientUpdate:
    """A client's model after local training, identified by its stable client id."""

    cid: int
    params: Params
    num_examples: int
    epochs: int
    loss: float


class ClientTrainer(Protocol):
    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> list[ClientUpdate]:
        """Train ``params`` on each client in ``seeds`` (client id → shuffling seed); replies sorted by id.

        Clients that fail are left out of the replies (the round goes on with the others).
        """
        ...


def max_concurrency(intervals: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) intervals open at one instant; an end frees its slot before a
    start at the same instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@dataclass
class Placement:
    """Where the ClientApps ran, as their replies report it: devices, Ray GPU ids per worker, concurrency."""

    devices: set[str] = field(default_factory=set)
    gpu_ids_of_worker: dict[int, str] = field(default_factory=dict)
    max_concurrent_clients: int = 0
    failed_replies: int = 0

    def summary(self) -> dict[str, Any]:
        workers_of_gpu: dict[str, int] = {}
        for ids in self.gpu_ids_of_worker.values():
            for gpu in filter(None, ids.split(",")):
                workers_of_gpu[gpu] = workers_of_gpu.get(gpu, 0) + 1
        return {
            "devices": sorted(self.devices),
            "workers": len(self.gpu_ids_of_worker),
            "workers_per_gpu_id": dict(sorted(workers_of_gpu.items())),
            "max_concurrent_clients": self.max_concurrent_clients,
            "failed_replies": self.failed_replies,
        }


def client_seed(seed: int, stream: int, round_: int, cid: int) -> int:
    """A client's shuffling seed for one round; retraining reuses stream 0 to replay training exactly."""
    return int(np.random.SeedSequence([seed, stream, round_, cid]).generate_state(1)[0])


class FlowerTrainer:
    """Sends train messages to the ClientApps through Flower's Grid and collects the replies."""

    def __init__(self, grid: Grid, num_clients: int, timeout: float | None = None, wait_s: float = 120.0) -> None:
        self.grid = grid
        self.timeout = timeout
        self.placement = Placement()
        self.node_of = self._discover(num_clients, wait_s)

    def _discover(self, num_clients: int, wait_s: float) -> dict[int, int]:
        """Map client (partition) id → Flower node id by asking every node once."""
        t0 = time.monotonic()
        deadline = t0 + wait_s
        node_ids = list(self.grid.get_node_ids())
        while len(node_ids) < num_clients:  # the simulation engine registers nodes after the ServerApp starts
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(node_ids)} of {num_clients} client nodes came up in {wait_s:.0f}s")
            time.sleep(0.05)
            node_ids = list(self.grid.get_node_ids())
        log.info(
            "%d client nodes up after %.1fs; asking each for its partition id", len(node_ids), time.monotonic() - t0
        )
        t1 = time.monotonic()
        messages = [Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY) for n in node_ids]
        mapping: dict[int, int] = {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            if reply.has_error():
                raise RuntimeError(f"node {reply.metadata.src_node_id} failed to answer: {reply.error.reason}")
            mapping[int(number(reply.content.metric_records["metrics"], "partition-id"))] = reply.metadata.src_node_id
        if sorted(mapping) != list(range(num_clients)):
            raise RuntimeError(f"expected client ids 0..{num_clients - 1}, nodes answered {sorted(mapping)}")
        log.info("%d clients answered in %.1fs", len(mapping), time.monotonic() - t1)
        return mapping

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> list[ClientUpdate]:
        arrays = params_to_record(params)
        messages = []
        for cid, seed in sorted(seeds.items()):
            config = train_config(
                local_epochs=plan.local_epochs,
                lr=plan.lr,
                batch_size=plan.batch_size,
                momentum=plan.momentum,
                seed=seed,
            )
            content = RecordDict({"arrays": arrays, "config": config})
            messages.append(
                Message(content, dst_node_id=self.node_of[cid], message_type=MessageType.TRAIN, group_id=group)
            )
        updates, failures, spans = [], [], []
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            if reply.has_error():
                failures.append(reply.error.reason)
                continue
            m = reply.content.metric_records["metrics"]
            where = reply.content.config_records["placement"]
            self.placement.devices.add(str(where["device"]))
            self.placement.gpu_ids_of_worker[int(number(where, "pid"))] = str(where["gpu-ids"])
            spans.append((number(where, "started"), number(where, "ended")))
            updates.append(
                ClientUpdate(
                    cid=int(number(m, "partition-id")),
                    params=record_to_params(reply.content.array_records["arrays"]),
                    num_examples=int(number(m, "num-examples")),
                    epochs=int(number(m, "epochs")),
                    loss=number(m, "train-loss"),
                )
            )
        if failures:
            self.placement.failed_replies += len(failures)
            log.warning(
                "[%s] %d of %d clients failed and are left out: %s", group, len(failures), len(messages), failures[0]
            )
        self.placement.max_concurrent_clients = max(self.placement.max_concurrent_clients, max_concurrency(spans))
        return sorted(updates, key=lambda u: u.cid)


class LocalTrainer:
    """The same client training, in this process: for unit tests and quick experiments without Ray."""

    def __init__(self, cfg: Config, data: FederatedData) -> None:
        self.cfg = cfg
        self.data = data

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> list[ClientUpdate]:
        updates = []
        for cid, seed in sorted(seeds.items()):
            if drops_out(seed, self.cfg.fl.dropout_rate):
                continue
            model = build_model(self.cfg.model, self.data.input_shape, self.data.num_classes, self.cfg.seed)
            set_params(model, params)
            loss = train_epochs(
                model,
                self.data.client(cid),
                epochs=plan.local_epochs,
                batch_size=plan.batch_size,
                lr=plan.lr,
                momentum=plan.momentum,
                seed=seed,
                device=torch.device("cpu"),
            )
            updates.append(
                ClientUpdate(cid, get_params(model), len(self.data.partitions[cid]), plan.local_epochs, loss)
            )
        return updates


class CostMeter:
    """Wraps a trainer and counts what it spent: rounds, client updates, client epochs."""

    def __init__(self, inner: ClientTrainer) -> None:
        self.inner = inner
        self.rounds = 0
        self.client_updates = 0
        self.client_epochs = 0

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> list[ClientUpdate]:
        updates = self.inner.train(params, seeds, plan, group)
        self.rounds += 1
        self.client_updates += len(updates)
        self.client_epochs += sum(u.epochs for u in updates)
        return updates
