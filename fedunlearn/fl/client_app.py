"""The ClientApp: trains the received global model on its partition and replies with its weights.

Client ids are Flower partition ids (``context.node_config["partition-id"]``), stable across rounds.
Message contract (train): arrays ``arrays``, config ``config`` with local-epochs, lr, batch-size,
momentum, seed. Reply: arrays ``arrays`` and metrics ``metrics`` with partition-id, num-examples,
epochs, train-loss. A ``query`` message answers partition-id and num-examples.
"""

from __future__ import annotations

import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
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


def _device() -> torch.device:
    # Ray sets CUDA_VISIBLE_DEVICES to the GPU share it assigned this actor.
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
        data = _data(cfg)
        run = msg.content.config_records["config"]
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
            seed=int(number(run, "seed")),
            device=_device(),
        )
        metrics = MetricRecord(
            {"partition-id": cid, "num-examples": len(data.partitions[cid]), "epochs": epochs, "train-loss": loss}
        )
        content = RecordDict({"arrays": params_to_record(get_params(model)), "metrics": metrics})
        return Message(content, reply_to=msg)

    return app


def train_config(*, local_epochs: int, lr: float, batch_size: int, momentum: float, seed: int) -> ConfigRecord:
    """The ConfigRecord a train message carries."""
    return ConfigRecord(
        {"local-epochs": local_epochs, "lr": lr, "batch-size": batch_size, "momentum": momentum, "seed": seed}
    )
