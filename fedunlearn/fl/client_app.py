"""The ClientApp: trains the received global model on its partition and replies with its weights.

Client ids are Flower partition ids (``context.node_config["partition-id"]``), stable across rounds.
Message contract (train): arrays ``arrays``, config ``config`` with local-epochs (may be fractional), lr,
batch-size, momentum, seed. Reply: arrays ``arrays``, metrics ``metrics`` with partition-id, num-examples,
epochs, train-loss, and config ``placement`` (device, Ray GPU ids, worker pid, start and end times).
A client that drops out (``fl.dropout_rate``) replies with error ``DROPOUT``; a client whose training raises
replies with error ``FAILED``, whose reason is the one-line error, then the traceback. A ``query`` message
answers partition-id.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from typing import Any

import ray
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedunlearn.fl.params import Params
from fedunlearn.fl.task import TaskConfig, TrainPlan, drops_out, run_client

DROPOUT = 1001  # error code: a simulated dropout (fl.dropout_rate)
FAILED = 1002  # error code: the ClientApp raised


def params_to_record(params: Params) -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in params.items()})


def record_to_params(record: ArrayRecord) -> Params:
    return {k: arr.numpy() for k, arr in record.items()}


def number(record: ConfigRecord | MetricRecord, key: str) -> float:
    """A scalar entry of a config or metric record, checked."""
    value = record[key]
    if not isinstance(value, int | float):
        raise TypeError(f"record entry {key!r} is {type(value).__name__}, expected a number")
    return value


def plan_to_record(plan: TrainPlan, seed: int) -> ConfigRecord:
    """The ConfigRecord a train message carries."""
    return ConfigRecord(
        {
            "local-epochs": float(plan.epochs),
            "lr": plan.lr,
            "batch-size": plan.batch_size,
            "momentum": plan.momentum,
            "max-grad-norm": plan.max_grad_norm or 0.0,  # 0: no clipping
            "seed": seed,
        }
    )


def record_to_plan(record: ConfigRecord) -> tuple[TrainPlan, int]:
    plan = TrainPlan(
        number(record, "local-epochs"),
        number(record, "lr"),
        int(number(record, "batch-size")),
        number(record, "momentum"),
        number(record, "max-grad-norm") or None,
    )
    return plan, int(number(record, "seed"))


def _device() -> torch.device:
    # Ray sets CUDA_VISIBLE_DEVICES to the GPU share it assigned this actor.
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _ray_gpu_ids() -> str:
    """The GPU ids Ray assigned this worker (logical ones too), comma-separated; empty outside Ray."""
    if not ray.is_initialized():
        return ""
    return ",".join(str(g) for g in ray.get_gpu_ids())


class TaskClientApp(ClientApp):
    """A ClientApp that pickles as its task alone: Flower's engine sends the app with every message, and its handler
    closures would otherwise be pickled each time (about a millisecond per client per round)."""

    task: TaskConfig

    def __reduce__(self) -> tuple[Any, tuple[TaskConfig]]:
        return make_client_app, (self.task,)


_APPS: dict[str, ClientApp] = {}


def make_client_app(task: TaskConfig) -> ClientApp:
    """A ClientApp bound to the run's task (built once per process and task); data are built lazily, once per
    Ray worker."""
    key = json.dumps(dataclasses.asdict(task), sort_keys=True)
    if key not in _APPS:
        _APPS[key] = _new_client_app(task)
    return _APPS[key]


def _new_client_app(task: TaskConfig) -> ClientApp:
    app = TaskClientApp()
    app.task = task

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        cid = int(context.node_config["partition-id"])
        return Message(RecordDict({"metrics": MetricRecord({"partition-id": cid})}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(task.threads)
        cid = int(context.node_config["partition-id"])
        plan, seed = record_to_plan(msg.content.config_records["config"])
        if drops_out(seed, task.dropout_rate):
            return Message(Error(DROPOUT, f"client {cid} dropped out (fl.dropout_rate)"), reply_to=msg)
        started = time.time()
        device = _device()
        try:
            params = record_to_params(msg.content.array_records["arrays"])
            update = run_client(task, cid, params, plan, seed, device, msg.metadata.group_id)
        except Exception as err:  # reported to the server, which applies fl.max_client_failures
            reason = f"{type(err).__name__}: {err}".splitlines()[0] + "\n" + traceback.format_exc()
            return Message(Error(FAILED, reason), reply_to=msg)
        metrics = MetricRecord(
            {
                "partition-id": cid,
                "num-examples": update.num_examples,
                "epochs": update.epochs,
                "train-loss": update.loss,
            }
        )
        placement = ConfigRecord(
            {
                "device": str(device),
                "gpu-ids": _ray_gpu_ids(),
                "pid": os.getpid(),
                "node": ray.get_runtime_context().get_node_id() if ray.is_initialized() else "",
                "started": started,
                "ended": time.time(),
            }
        )
        content = RecordDict({"arrays": params_to_record(update.params), "metrics": metrics, "placement": placement})
        return Message(content, reply_to=msg)

    return app
