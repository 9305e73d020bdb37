"""The ClientApp: trains the received global model on its partition and replies with its parameters.

Client ids are Flower partition ids (``context.node_config["partition-id"]``), stable across rounds. What the
messages hold is ``fedunlearn.flower.codec``'s: the train config, the reply's records, a pack's, and the error codes
of a dropout (``DROPOUT``) and of a client whose training raised (``FAILED``, with the one-line error, then the
traceback). A ``query`` message answers partition-id; with config ``warm-up`` it first builds the federation's
data and model (so that no timed stage pays a new worker's start-up). A *pack* (simulation only,
``ray.pack_clients``) trains several clients in turn on one worker and answers them in one reply: the updates are
those of one message per client (the same seeds); only the Ray round trips are fewer.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import traceback
from typing import Any

import ray
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedunlearn.core.client_stats import declared_stats
from fedunlearn.core.params import Params
from fedunlearn.core.task import TaskConfig, TrainPlan, drops_out, run_client, warm_up
from fedunlearn.flower.codec import (
    DROPOUT,
    FAILED,
    params_to_record,
    record,
    record_to_pack,
    record_to_params,
    record_to_plan,
    update_to_metrics,
)
from fedunlearn.unlearning.registry import discover


def _device() -> torch.device:
    # Ray sets CUDA_VISIBLE_DEVICES to the GPU share it assigned this actor.
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _ray_placement() -> tuple[str, str]:
    """The GPU ids Ray assigned this worker (logical ones too, comma-separated) and its node id; empty outside
    Ray."""
    return _ray_worker_placement() if ray.is_initialized() else ("", "")


@functools.cache
def _ray_worker_placement() -> tuple[str, str]:  # an actor keeps its GPUs and node for life
    return ",".join(str(g) for g in ray.get_gpu_ids()), ray.get_runtime_context().get_node_id()


class TaskClientApp(ClientApp):
    """A ClientApp that pickles as its task alone: Flower's engine sends the app with every message, and its handler
    closures would otherwise be pickled each time (about a millisecond per client per round)."""

    task: TaskConfig
    key: str

    def __reduce__(self) -> tuple[Any, tuple[TaskConfig, str]]:
        return make_client_app, (self.task, self.key)


_APPS: dict[str, ClientApp] = {}


def make_client_app(task: TaskConfig, key: str | None = None) -> ClientApp:
    """A ClientApp bound to the run's task (built once per process and task; ``key``: the task's, when the caller
    has it); data are built lazily, once per Ray worker."""
    key = key or json.dumps(dataclasses.asdict(task), sort_keys=True)
    if key not in _APPS:
        _APPS[key] = _new_client_app(task, key)
    return _APPS[key]


def _train_one(
    task: TaskConfig, cid: int, params: Params, plan: TrainPlan, seed: int, group: str
) -> RecordDict | Error:
    """Client ``cid``'s reply content (arrays, metrics, placement), or the Error of a dropout or a failure."""
    if drops_out(seed, task.dropout_rate):
        return Error(DROPOUT, f"client {cid} dropped out (fl.dropout_rate)")
    started = time.time()
    device = _device()
    try:
        update = run_client(task, cid, params, plan, seed, device, group)
    except Exception as err:  # reported to the server, which applies fl.max_client_failures
        return Error(FAILED, f"{type(err).__name__}: {err}".splitlines()[0] + "\n" + traceback.format_exc())
    metrics = update_to_metrics(update)
    gpu_ids, node = _ray_placement()
    placement = ConfigRecord(
        {
            "device": str(device),
            "gpu-ids": gpu_ids,
            "pid": os.getpid(),
            "node": node,
            "started": started,
            "ended": time.time(),
        }
    )
    return RecordDict({"arrays": params_to_record(update.params), "metrics": metrics, "placement": placement})


def _new_client_app(task: TaskConfig, key: str) -> ClientApp:
    app = TaskClientApp()
    app.task, app.key = task, key

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        cid = int(context.node_config["partition-id"])
        if "warm-up" in msg.content:
            warm_up(task.worker_model(task.federation()))
        return Message(RecordDict({"metrics": MetricRecord({"partition-id": cid})}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(task.threads)
        config = record(msg.content, "config", ConfigRecord)
        plan, seed = record_to_plan(config)
        if any(name not in declared_stats() for name in plan.stats):
            discover()  # the methods declare the statistics; a fresh worker has not imported them yet
        params = record_to_params(record(msg.content, "arrays", ArrayRecord))
        group = msg.metadata.group_id
        pack = record_to_pack(config)
        if pack is None:
            one = _train_one(task, int(context.node_config["partition-id"]), params, plan, seed, group)
            return Message(one, reply_to=msg)
        content = RecordDict({"node": MetricRecord({"partition-id": int(context.node_config["partition-id"])})})
        for cid, client_seed in pack.items():
            outcome = _train_one(task, cid, params, plan, client_seed, group)
            if isinstance(outcome, Error):
                content[f"error/{cid}"] = ConfigRecord({"code": outcome.code, "reason": outcome.reason or ""})
                continue
            for name, value in outcome.items():
                content[f"{name}/{cid}"] = value
        return Message(content, reply_to=msg)

    return app
