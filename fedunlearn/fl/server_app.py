"""The ServerApp: runs a caller's ``main(trainer)`` with a ``FlowerTrainer`` that reaches the ClientApps through
Flower's Grid, and hands back its result (or the exception that ended it) and where the clients ran.

Client ids are partition ids. In Flower's simulation engine node ``i`` (in registration order) holds partition
``i``, so the mapping is read from the Grid's node registry at start — no message to any node — and each
node's first reply confirms it. On any other Grid each node is asked once for its partition id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flwr.app import Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedunlearn.fl import engine
from fedunlearn.fl.client_app import DROPOUT, number, params_to_record, plan_to_record, record_to_params
from fedunlearn.fl.federation import ClientFailure, ClientTrainer, Replies, settle
from fedunlearn.fl.params import Params
from fedunlearn.fl.task import ClientUpdate, TrainPlan

log = logging.getLogger(__name__)
trace = logging.getLogger("fedunlearn.trace")  # the run's log file only


class Interrupted(RuntimeError):
    """The run was asked to stop (SIGTERM, Ctrl-C, or the simulation engine failed)."""


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
    """Where the ClientApps ran, as their replies report it: devices, Ray GPU ids and node per worker,
    concurrency, and replies that were not updates."""

    devices: set[str] = field(default_factory=set)
    gpu_ids_of_worker: dict[int, str] = field(default_factory=dict)
    node_of_worker: dict[int, str] = field(default_factory=dict)
    clients_per_node: dict[str, int] = field(default_factory=dict)
    max_concurrent_clients: int = 0
    failed_replies: int = 0  # simulated dropouts
    client_failures: int = 0  # ClientApps that raised (tolerated)

    def summary(self) -> dict[str, Any]:
        workers_of_gpu: dict[str, int] = {}
        for ids in self.gpu_ids_of_worker.values():
            for gpu in filter(None, ids.split(",")):
                workers_of_gpu[gpu] = workers_of_gpu.get(gpu, 0) + 1
        workers_of_node: dict[str, int] = {}
        for node in self.node_of_worker.values():
            workers_of_node[node] = workers_of_node.get(node, 0) + 1
        return {
            "devices": sorted(self.devices),
            "workers": len(self.gpu_ids_of_worker),
            "workers_per_gpu_id": dict(sorted(workers_of_gpu.items())),
            "workers_per_node": dict(sorted(workers_of_node.items())),
            "client_runs_per_node": dict(sorted(self.clients_per_node.items())),
            "max_concurrent_clients": self.max_concurrent_clients,
            "failed_replies": self.failed_replies,
            "client_failures": self.client_failures,
        }


def _nodes_in_registration_order(grid: Grid) -> list[int] | None:
    """The simulation engine's node ids in the order it registered them (node i holds partition i), read from
    its in-memory link state; None on a Grid that has none."""
    registry = getattr(getattr(grid, "state", None), "nodes", None)
    return list(registry) if isinstance(registry, dict) else None


class FlowerTrainer:
    """Sends train messages to the ClientApps through Flower's Grid and collects the replies.

    ``stop`` ends a wait early (SIGTERM, or the simulation engine failed): ``train`` then raises Interrupted.
    """

    def __init__(
        self,
        grid: Grid,
        num_clients: int,
        max_failures: int,
        stop: threading.Event,
        pull_interval: float = 0.05,
        wait_s: float = 120.0,
    ) -> None:
        self.grid = grid
        self.max_failures = max_failures
        self.stop = stop
        self.pull_interval = pull_interval
        self.placement = Placement()
        self.unconfirmed: set[int] = set()
        self.node_of = self._discover(num_clients, wait_s)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted("stopped while waiting for the clients")

    def _discover(self, num_clients: int, wait_s: float) -> dict[int, int]:
        """Client (partition) id → Flower node id."""
        t0 = time.monotonic()
        node_ids = set(self.grid.get_node_ids())
        while len(node_ids) < num_clients:  # the simulation engine registers nodes after the ServerApp starts
            self._check_stop()
            if time.monotonic() > t0 + wait_s:
                raise RuntimeError(f"only {len(node_ids)} of {num_clients} client nodes came up in {wait_s:.0f}s")
            time.sleep(0.02)
            node_ids = set(self.grid.get_node_ids())
        ordered = _nodes_in_registration_order(self.grid)
        if ordered is not None and set(ordered) >= node_ids:
            mapping = dict(enumerate(n for n in ordered if n in node_ids))
            self.unconfirmed = set(mapping)
            log.info("%d client nodes up after %.1fs", len(node_ids), time.monotonic() - t0)
            return mapping
        log.info(
            "%d client nodes up after %.1fs; asking each for its partition id", len(node_ids), time.monotonic() - t0
        )
        messages = [Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY) for n in sorted(node_ids)]
        mapping = {}
        for reply in self._exchange(messages, "discovery"):
            if reply.has_error():
                raise RuntimeError(f"node {reply.metadata.src_node_id} failed to answer: {reply.error.reason}")
            mapping[int(number(reply.content.metric_records["metrics"], "partition-id"))] = reply.metadata.src_node_id
        if sorted(mapping) != list(range(num_clients)):
            raise RuntimeError(f"expected client ids 0..{num_clients - 1}, nodes answered {sorted(mapping)}")
        return mapping

    def _exchange(self, messages: list[Message], group: str) -> list[Message]:
        """Push ``messages`` and wait for every reply: woken as replies land (at most ``pull_interval`` apart)."""
        pending = set(self.grid.push_messages(messages))
        engine.notify()
        replies: list[Message] = []
        while pending:
            self._check_stop()
            got = list(self.grid.pull_messages(pending))
            replies.extend(got)
            pending.difference_update(m.metadata.reply_to_message_id for m in got)
            if pending:
                engine.wait_for_replies(self.pull_interval)
        return replies

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        arrays = params_to_record(params)
        client_of_node = {}
        messages = []
        for cid, seed in sorted(seeds.items()):
            content = RecordDict({"arrays": arrays, "config": plan_to_record(plan, seed)})
            node = self.node_of[cid]
            client_of_node[node] = cid
            messages.append(Message(content, dst_node_id=node, message_type=MessageType.TRAIN, group_id=group))
        updates, dropped, failures, spans = [], [], [], []
        for reply in self._exchange(messages, group):
            cid = client_of_node[reply.metadata.src_node_id]
            if reply.has_error():
                if reply.error.code == DROPOUT:
                    dropped.append(cid)
                else:
                    error, _, detail = (reply.error.reason or "").strip().partition("\n")
                    failures.append(ClientFailure(cid, error, detail))
                continue
            m = reply.content.metric_records["metrics"]
            if int(number(m, "partition-id")) != cid:
                raise RuntimeError(
                    f"node {reply.metadata.src_node_id} holds partition {int(number(m, 'partition-id'))}, not {cid}: "
                    "this Flower version registers simulation nodes in another order"
                )
            self.unconfirmed.discard(cid)
            where = reply.content.config_records["placement"]
            pid = int(number(where, "pid"))
            self.placement.devices.add(str(where["device"]))
            self.placement.gpu_ids_of_worker[pid] = str(where["gpu-ids"])
            self.placement.node_of_worker[pid] = str(where["node"])
            node_id = str(where["node"])
            self.placement.clients_per_node[node_id] = self.placement.clients_per_node.get(node_id, 0) + 1
            spans.append((number(where, "started"), number(where, "ended")))
            updates.append(
                ClientUpdate(
                    cid,
                    record_to_params(reply.content.array_records["arrays"]),
                    int(number(m, "num-examples")),
                    number(m, "epochs"),
                    number(m, "train-loss"),
                )
            )
        self.placement.failed_replies += len(dropped)
        self.placement.client_failures += len(failures)
        for failure in failures:
            log.warning("[%s] client %d failed: %s", group, failure.cid, failure.error)
            trace.warning("[%s] client %d failed:\n%s", group, failure.cid, failure.detail)
        self.placement.max_concurrent_clients = max(self.placement.max_concurrent_clients, max_concurrency(spans))
        return settle(group, Replies(updates, dropped, failures), self.max_failures)


@dataclass
class ServerRun:
    """What the ServerApp thread hands back to the launcher."""

    result: Any = None
    error: BaseException | None = None
    placement: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def make_server_app(
    main: Callable[[ClientTrainer], Any], num_clients: int, max_failures: int, stop: threading.Event, run: ServerRun
) -> ServerApp:
    """A ServerApp whose main calls ``main(trainer)`` and leaves its outcome in ``run``."""
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        try:
            trainer = FlowerTrainer(grid, num_clients, max_failures, stop)
            run.result = main(trainer)
            run.placement = trainer.placement.summary()
        except BaseException as err:  # handed to the launcher, which reports it outside Flower's engine
            run.error = err
        finally:
            run.done.set()

    return app
