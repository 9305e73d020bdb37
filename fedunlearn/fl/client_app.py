"""The ClientApp: trains the received global model on its partition and replies with its weights.

Client ids are Flower partition ids (``context.node_config["partition-id"]``), stable across rounds.
Message contract (train): arrays ``arrays``, config ``config`` with local-epochs, lr, batch-size,
momentum, seed. Reply: arrays ``arrays``, metrics ``metrics`` with partition-id, num-examples,
epochs, train-loss, and config ``placement`` (where it ran: device, Ray GPU ids, worker pid, start
and end times). A client that drops out (``fl.dropout_rate``) replies with an error instead, which
the server handles like any failed client. A ``query`` message answers partition-id and num-examples.
"""

from __future__ import annotations

import os
import time

import numpy as np
import ray
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedunlearn.config import Config
from fedunlearn.data import FederatedData, federated_data
from fedunlearn.fl.local_training import train_epochs
from fedunlearn.fl.params import Params, get_params, set_params
from fedunlearn.models import build_model


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


def _data(cfg: Config) -> FederatedData:
    return federated_data(cfg)


DROPOUT_STREAM = 7
DROPOUT_ERROR_CODE = 1001


def drops_out(seed: int, rate: float) -> bool:
    """Whether the client given this round's ``seed`` fails: a pure function of the seed, so a replay
    with the same seeds sees the same failures."""
    return rate > 0.0 and float(np.random.default_rng([seed, DROPOUT_STREAM]).random()) < rate


def _device() -> torch.device:
    # Ray sets CUDA_VISIBLE_DEVICES to the GPU share it assigned this actor.
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _ray_gpu_ids() -> str:
    """The GPU ids Ray assigned this worker (logical ones too), comma-separated; empty outside Ray."""
    if not ray.is_initialized():
        return ""
    return ",".join(str(g) for g in ray.get_gpu_ids())


def make_client_app(cfg: Config) -> ClientApp:
    """A ClientApp bound to the run's config; data are built lazily, once per Ray worker."""
    app = ClientApp()
    threads = max(1, int(cfg.ray.num_cpus_per_client))

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        cid = int(context.node_config["partition-id"])
        n = len(_data(cfg).partitions[cid])
        return Message(RecordDict({"metrics": MetricRecord({"partition-id": cid, "num-examples": n})}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(threads)
        cid = int(context.node_config["partition-id"])
        run = msg.content.config_records["config"]
        seed = int(number(run, "seed"))
        if drops_out(seed, cfg.fl.dropout_rate):
            return Message(Error(DROPOUT_ERROR_CODE, f"client {cid} dropped out (fl.dropout_rate)"), reply_to=msg)
        started = time.time()
        data = _data(cfg)
        device = _device()
        model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)
        set_params(model, record_to_params(msg.content.array_records["arrays"]))
        epochs = int(number(run, "local-epochs"))
        loss = train_epochs(
            model,
            data.client(cid),
            epochs=epochs,
            batch_size=int(number(run, "batch-size")),
            lr=number(run, "lr"),
            momentum=number(run, "momentum"),
            seed=seed,
            device=device,
        )
        metrics = MetricRecord(
            {"partition-id": cid, "num-examples": len(data.partitions[cid]), "epochs": epochs, "train-loss": loss}
        )
        placement = ConfigRecord(
            {
                "device": str(device),
                "gpu-ids": _ray_gpu_ids(),
                "pid": os.getpid(),
                "started": started,
                "ended": time.time(),
            }
        )
        content = RecordDict(
            {"arrays": params_to_record(get_params(model)), "metrics": metrics, "placement": placement}
        )
        return Message(content, reply_to=msg)

    return app


def train_config(*, local_epochs: int, lr: float, batch_size: int, momentum: float, seed: int) -> ConfigRecord:
    """The ConfigRecord a train message carries."""
    return ConfigRecord(
        {"local-epochs": local_epochs, "lr": lr, "batch-size": batch_size, "momentum": momentum, "seed": seed}
    )
