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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedunlearn.core.federation import ClientFailure, ClientTrainer, Interrupted, Replies, settle
from fedunlearn.core.params import Params
from fedunlearn.core.task import ClientUpdate, TrainPlan, sgd_steps
from fedunlearn.flower import engine
from fedunlearn.flower.codec import (
    DROPOUT,
    metrics_to_update,
    number,
    pack_to_record,
    params_to_record,
    plan_to_record,
    record,
    record_to_params,
)

log = logging.getLogger(__name__)
trace = logging.getLogger("fedunlearn.trace")  # the run's log file only


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
    train_messages: int = 0  # train messages sent (fewer than client runs when clients go in packs)

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
            "train_messages": self.train_messages,
        }


def _nodes_in_registration_order(grid: Grid) -> list[int] | None:
    """The simulation engine's node ids in the order it registered them (node i holds partition i), read from
    its in-memory link state; None on a Grid that has none."""
    if engine.flower_own():
        return None
    registry = getattr(getattr(grid, "state", None), "nodes", None)
    return list(registry) if isinstance(registry, dict) else None


def make_packs(work: Mapping[int, float], seeds: Mapping[int, int], packs: int) -> list[dict[int, int]]:
    """``seeds`` in ``packs`` packs of about equal ``work`` (longest processing time first: the clients, heaviest
    first, each into the pack with the least work so far; fewer packs when there are fewer clients), heaviest pack
    first. With more packs than workers, a worker takes the next pack as it comes free: one that runs slower than
    its share leaves a pack to the others, at one more message (a Ray round trip) per pack."""
    count = min(len(seeds), packs)
    loads = [0.0] * count
    made: list[dict[int, int]] = [{} for _ in range(count)]
    for c in sorted(seeds, key=lambda c: (-work[c], c)):
        lightest = min(range(count), key=lambda i: (loads[i], i))
        loads[lightest] += work[c]
        made[lightest][c] = seeds[c]
    return [dict(sorted(made[i].items())) for i in sorted(range(count), key=lambda i: (-loads[i], i))]


def _refused(cid: int, code: int, reason: str, dropped: list[int], failures: list[ClientFailure]) -> None:
    """A client that did not send an update: a simulated dropout, or a failure (its one-line error, then detail)."""
    if code == DROPOUT:
        dropped.append(cid)
    else:
        error, _, detail = reason.strip().partition("\n")
        failures.append(ClientFailure(cid, error, detail))


class FlowerTrainer:
    """Sends train messages to the ClientApps through Flower's Grid and collects the replies.

    ``pack_count`` (simulation only, ``ray.pack_clients``): a round's clients go out in that many packs
    (``make_packs``; ``ray.packs_per_actor`` per actor), each message training its clients in turn on one Ray
    worker, instead of one message per client; the updates are the same. ``sizes`` (samples per client) estimate
    each client's work. ``warm_up`` asks that many workers to build the data and model before the first round.
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
        pack_count: int | None = None,
        sizes: Sequence[int] | None = None,
        warm_up: int = 0,
    ) -> None:
        self.grid = grid
        self.max_failures = max_failures
        self.stop = stop
        self.pull_interval = pull_interval
        self.pack_count = pack_count
        self.sizes = sizes
        self.placement = Placement()
        self.unconfirmed: set[int] = set()
        self.node_of = self._discover(num_clients, wait_s)
        if warm_up:
            self._warm_up(min(warm_up, num_clients))

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
            partition = number(record(reply.content, "metrics", MetricRecord), "partition-id")
            mapping[int(partition)] = reply.metadata.src_node_id
        if sorted(mapping) != list(range(num_clients)):
            raise RuntimeError(f"expected client ids 0..{num_clients - 1}, nodes answered {sorted(mapping)}")
        return mapping

    def _warm_up(self, workers: int) -> None:
        """One query per worker that builds the data and model there: a new Ray worker's imports and data set-up
        (seconds) then fall before the first timed stage, not inside it."""
        t0 = time.monotonic()
        content = RecordDict({"warm-up": ConfigRecord({"workers": workers})})
        messages = [
            Message(content, dst_node_id=self.node_of[cid], message_type=MessageType.QUERY) for cid in range(workers)
        ]
        for reply in self._exchange(messages, "warm-up"):
            if reply.has_error():
                raise RuntimeError(f"a ClientApp failed to start: {reply.error.reason}")
        log.info("%d worker(s) warmed up in %.1fs", workers, time.monotonic() - t0)

    def _exchange(self, messages: list[Message], group: str) -> Iterator[Message]:
        """Push ``messages`` and yield the replies as they land (woken by each, at most ``pull_interval`` apart),
        so that the caller reads one while the others are still being computed."""
        pending = set(self.grid.push_messages(messages))
        engine.notify()
        while pending:
            self._check_stop()
            got = list(self.grid.pull_messages(pending))
            pending.difference_update(m.metadata.reply_to_message_id for m in got)
            yield from got
            if pending:
                engine.wait_for_replies(self.pull_interval)

    def _messages(
        self, arrays: ArrayRecord, seeds: Mapping[int, int], plan: TrainPlan, group: str
    ) -> tuple[list[Message], dict[int, list[int]]]:
        """The round's train messages, and the clients each node's message trains."""
        packs = None
        if self.pack_count:
            # a client's work: its SGD steps, plus one for what a client costs besides them
            sizes = self.sizes
            work = {c: 1.0 + (sgd_steps(sizes[c], plan.batch_size, plan.epochs) if sizes else 1.0) for c in seeds}
            packs = make_packs(work, seeds, self.pack_count)
        messages, clients_of_node = [], {}
        for pack in packs or [{cid: seed} for cid, seed in sorted(seeds.items())]:
            first = min(pack)
            config = pack_to_record(plan, pack) if packs else plan_to_record(plan, pack[first])
            node = self.node_of[first]
            clients_of_node[node] = sorted(pack)
            content = RecordDict({"arrays": arrays, "config": config})
            messages.append(Message(content, dst_node_id=node, message_type=MessageType.TRAIN, group_id=group))
        return messages, clients_of_node

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        messages, clients_of_node = self._messages(params_to_record(params), seeds, plan, group)
        self.placement.train_messages += len(messages)
        updates, spans = [], []
        dropped: list[int] = []
        failures: list[ClientFailure] = []
        for reply in self._exchange(messages, group):
            node = reply.metadata.src_node_id
            cids = clients_of_node[node]
            if reply.has_error():  # the ClientApp's own error (one client), or the whole pack's worker failed
                for cid in cids:
                    _refused(cid, int(reply.error.code), reply.error.reason or "", dropped, failures)
                continue
            content = reply.content
            if "node" in content:  # a pack: the node's partition, then each client's records as <name>/<cid>
                self._confirm(node, int(number(record(content, "node", MetricRecord), "partition-id")), cids[0])
                suffixes = [f"/{cid}" for cid in cids]
            else:
                self._confirm(node, int(number(record(content, "metrics", MetricRecord), "partition-id")), cids[0])
                suffixes = [""]
            for cid, suffix in zip(cids, suffixes, strict=True):
                if f"error{suffix}" in content:
                    err = record(content, f"error{suffix}", ConfigRecord)
                    _refused(cid, int(number(err, "code")), str(err["reason"]), dropped, failures)
                    continue
                update, span = self._update(cid, content, suffix)
                updates.append(update)
                spans.append(span)
        self.placement.failed_replies += len(dropped)
        self.placement.client_failures += len(failures)
        for failure in failures:
            log.warning("[%s] client %d failed: %s", group, failure.cid, failure.error)
            trace.warning("[%s] client %d failed:\n%s", group, failure.cid, failure.detail)
        self.placement.max_concurrent_clients = max(self.placement.max_concurrent_clients, max_concurrency(spans))
        return settle(group, Replies(updates, dropped, failures), self.max_failures)

    def _confirm(self, node: int, partition: int, cid: int) -> None:
        """The node sent client ``cid``'s message answered as partition ``partition``: the mapping holds."""
        if partition != cid:
            raise RuntimeError(
                f"node {node} holds partition {partition}, not {cid}: this Flower version registers simulation nodes "
                "in another order"
            )
        self.unconfirmed.discard(cid)

    def _update(self, cid: int, content: RecordDict, suffix: str) -> tuple[ClientUpdate, tuple[float, float]]:
        """Client ``cid``'s update and (start, end) from its records (``<name><suffix>``); records where it ran."""
        m = record(content, f"metrics{suffix}", MetricRecord)
        where = record(content, f"placement{suffix}", ConfigRecord)
        pid = int(number(where, "pid"))
        node_id = str(where["node"])
        self.placement.devices.add(str(where["device"]))
        self.placement.gpu_ids_of_worker[pid] = str(where["gpu-ids"])
        self.placement.node_of_worker[pid] = node_id
        self.placement.clients_per_node[node_id] = self.placement.clients_per_node.get(node_id, 0) + 1
        update = metrics_to_update(cid, record_to_params(record(content, f"arrays{suffix}", ArrayRecord)), m)
        return update, (number(where, "started"), number(where, "ended"))


@dataclass
class ServerOutcome:
    """What the ServerApp thread hands back to the launcher."""

    result: Any = None
    error: BaseException | None = None
    placement: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def make_server_app(
    main: Callable[[ClientTrainer], Any],
    num_clients: int,
    max_failures: int,
    stop: threading.Event,
    outcome: ServerOutcome,
    pack_count: int | None = None,
    sizes: Sequence[int] | None = None,
    warm_up: int = 0,
) -> ServerApp:
    """A ServerApp whose main calls ``main(trainer)`` and leaves its outcome in ``outcome`` (``pack_count``, ``sizes``,
    ``warm_up``: FlowerTrainer's)."""
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        try:
            trainer = FlowerTrainer(
                grid, num_clients, max_failures, stop, pack_count=pack_count, sizes=sizes, warm_up=warm_up
            )
            outcome.result = main(trainer)
            outcome.placement = trainer.placement.summary()
        except BaseException as err:  # handed to the launcher, which reports it outside Flower's engine
            outcome.error = err
        finally:
            outcome.done.set()

    return app
