"""The ClientApp: trains the received global model on its partition and replies with its weights.

Client ids are Flower partition ids (``context.node_config["partition-id"]``), stable across rounds.
Message contract (train): arrays ``arrays``, config ``config`` with local-epochs (may be fractional), lr,
batch-size, momentum, max-grad-norm, received-loss, optimizer, max-steps, seed. Reply: arrays ``arrays``, metrics
``metrics`` with partition-id, num-examples, epochs, train-loss (and received-loss, the received model's loss before
training, when the config asks for it), and config ``placement`` (device, Ray GPU ids, worker pid, start and end times).
A client that drops out (``fl.dropout_rate``) replies with error ``DROPOUT``; a client whose training raises
replies with error ``FAILED``, whose reason is the one-line error, then the traceback. A ``query`` message
answers partition-id; with config ``warm-up`` it first builds the federation's data and model (so that no timed
stage pays a new worker's start-up).

A *pack* (simulation only, ``ray.pack_clients``): a train message whose config also lists ``cids`` and ``seeds``
trains those clients in turn on this worker and answers them in one reply — records ``arrays/<cid>``,
``metrics/<cid>``, ``placement/<cid>`` per client, or ``error/<cid>`` (code, reason) for one that dropped out or
failed — plus metrics ``node`` with the partition-id of the node it was sent to. The updates are those of one
message per client (the same seeds); only the Ray round trips are fewer.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import time
import traceback
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import ray
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SType

from fedunlearn.fl.params import Params
from fedunlearn.fl.task import TaskConfig, TrainPlan, drops_out, run_client, warm_up

DROPOUT = 1001  # error code: a simulated dropout (fl.dropout_rate)
FAILED = 1002  # error code: the ClientApp raised


@functools.lru_cache(maxsize=256)
def _npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    """The header ``np.save`` writes before the data of a C-ordered array of ``dtype`` and ``shape``."""
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def to_array(value: np.ndarray) -> Array:
    """Flower's ``Array(value)`` without ``np.save``: the cached header, then the data (the same bytes for a
    C-ordered array; any other is stored C-ordered)."""
    if value.dtype.hasobject or value.ndim == 0:  # (ascontiguousarray would make a 0-d array 1-d)
        return Array(value)
    value = np.ascontiguousarray(value)
    dtype, shape = str(value.dtype), tuple(value.shape)
    return Array(dtype=dtype, shape=shape, stype=SType.NUMPY, data=_npy_header(dtype, shape) + value.tobytes())


def from_array(array: Array) -> np.ndarray:
    """``array.numpy()`` without ``np.load``'s header parsing when the header is the one ``to_array`` writes for
    the Array's dtype and shape (anything else goes through ``np.load``); a writable copy, as np.load gives."""
    header = _npy_header(array.dtype, tuple(array.shape)) if array.stype == SType.NUMPY and array.shape else b""
    if not header or not array.data.startswith(header):
        return array.numpy()
    return np.frombuffer(array.data, dtype=array.dtype, offset=len(header)).reshape(array.shape).copy()


def params_to_record(params: Params) -> ArrayRecord:
    return ArrayRecord({k: to_array(v) for k, v in params.items()})


def record_to_params(record: ArrayRecord) -> Params:
    return {k: from_array(arr) for k, arr in record.items()}


R = TypeVar("R", ArrayRecord, ConfigRecord, MetricRecord)


def record(content: RecordDict, key: str, kind: type[R]) -> R:
    """The record ``key`` of a message's content, checked to be a ``kind`` (``content.metric_records[key]`` and the
    like build a view of every record at each call: a pack's reply holds three per client)."""
    value = content[key]
    if not isinstance(value, kind):
        raise TypeError(f"record {key!r} is a {type(value).__name__}, expected a {kind.__name__}")
    return value


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
            "received-loss": plan.received_loss,
            "optimizer": plan.optimizer,
            "max-steps": plan.max_steps or 0,  # 0: no cap
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
        bool(record["received-loss"]),
        str(record["optimizer"]),
        int(number(record, "max-steps")) or None,
    )
    return plan, int(number(record, "seed"))


def pack_to_record(plan: TrainPlan, seeds: Mapping[int, int]) -> ConfigRecord:
    """The config of a pack: the plan, and each client's id and seed (``seed`` is the first client's)."""
    cids = sorted(seeds)
    record = plan_to_record(plan, seeds[cids[0]])
    record["cids"] = cids
    record["seeds"] = [seeds[c] for c in cids]
    return record


def record_to_pack(record: ConfigRecord) -> dict[int, int] | None:
    """Client id → seed of a pack's config; None for a one-client message."""
    if "cids" not in record:
        return None
    cids, seeds = record["cids"], record["seeds"]
    if not isinstance(cids, list) or not isinstance(seeds, list) or len(cids) != len(seeds):
        raise TypeError("a pack's config needs lists cids and seeds of one length")
    return {_integer(c): _integer(s) for c, s in zip(cids, seeds, strict=True)}


def _integer(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


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
    metrics = MetricRecord(
        {
            "partition-id": cid,
            "num-examples": update.num_examples,
            "epochs": update.epochs,
            "train-loss": update.loss,
        }
    )
    if update.received_loss is not None:
        metrics["received-loss"] = update.received_loss
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
