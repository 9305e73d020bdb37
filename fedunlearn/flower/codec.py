"""The wire format of fedunlearn's Flower messages.

Train message: arrays ``arrays``; config ``config`` with local-epochs (may be fractional), lr, batch-size,
momentum, max-grad-norm (0: none), optimizer, max-steps (0: no cap), seed, and stats (the client statistics to
report, comma-separated; ``fedunlearn.core.client_stats``). Reply: arrays ``arrays``; metrics ``metrics`` with
partition-id, num-examples, epochs, train-loss and ``stat/<name>`` for each statistic asked for; config
``placement`` (device, Ray GPU ids, worker pid, node, start and end times). A dropout replies with error
``DROPOUT``, a client whose training raised with ``FAILED``.

A pack's train config also lists ``cids`` and ``seeds``; its reply holds ``arrays/<cid>``, ``metrics/<cid>``,
``placement/<cid>`` per client, or ``error/<cid>`` (code, reason) for one that dropped out or failed, plus metrics
``node`` with the partition-id of the node it was sent to.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from typing import TypeVar

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from flwr.common.constant import SType

from fedunlearn.core.params import Params
from fedunlearn.core.task import ClientUpdate, TrainPlan

STAT = "stat/"  # a client statistic's key in the reply's metrics

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
            "optimizer": plan.optimizer,
            "max-steps": plan.max_steps or 0,  # 0: no cap
            "seed": seed,
            "stats": ",".join(plan.stats),
        }
    )


def record_to_plan(record: ConfigRecord) -> tuple[TrainPlan, int]:
    plan = TrainPlan(
        epochs=number(record, "local-epochs"), lr=number(record, "lr"), batch_size=int(number(record, "batch-size")),
        momentum=number(record, "momentum"), max_grad_norm=number(record, "max-grad-norm") or None,
        optimizer=str(record["optimizer"]), max_steps=int(number(record, "max-steps")) or None,
        stats=tuple(filter(None, str(record["stats"]).split(","))),
    )  # fmt: skip
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


def update_to_metrics(update: ClientUpdate) -> MetricRecord:
    """The reply's metrics of a client's update."""
    metrics = MetricRecord(
        {"partition-id": update.cid, "num-examples": update.num_examples, "epochs": update.epochs,
         "train-loss": update.loss}
    )  # fmt: skip
    for name, value in update.stats.items():
        metrics[STAT + name] = value
    return metrics


def metrics_to_update(cid: int, params: Params, metrics: MetricRecord) -> ClientUpdate:
    """A client's update from its reply's parameters and metrics."""
    return ClientUpdate(
        cid=cid, params=params, num_examples=int(number(metrics, "num-examples")), epochs=number(metrics, "epochs"),
        loss=number(metrics, "train-loss"),
        stats={k.removeprefix(STAT): number(metrics, k) for k in metrics if k.startswith(STAT)},
    )  # fmt: skip
