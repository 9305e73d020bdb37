"""Packs: a round's clients sent as a few messages that each train several clients on one Ray worker."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array, ConfigRecord, Context, Message, MessageType, RecordDict

from fedunlearn.core.params import get_params
from fedunlearn.core.task import FAULT_ENV, TaskConfig, TrainPlan, drops_out, run_client
from fedunlearn.flower.client_app import make_client_app
from fedunlearn.flower.codec import (
    DROPOUT,
    FAILED,
    from_array,
    pack_to_record,
    params_to_record,
    plan_to_record,
    record_to_pack,
    record_to_params,
    to_array,
)
from fedunlearn.flower.server_app import make_packs


def test_packs_cover_every_client_once_in_packs_of_equal_work() -> None:
    seeds = {c: 100 + c for c in range(18)}
    work = {c: float(1 + c % 5) for c in seeds}
    packs = make_packs(work, seeds, packs=4)  # 2 actors, ray.packs_per_actor=2
    assert sorted(c for p in packs for c in p) == list(range(18))
    assert all(p[c] == seeds[c] for p in packs for c in p)
    assert len(packs) == 4
    loads = [sum(work[c] for c in p) for p in packs]
    assert loads == sorted(loads, reverse=True)  # heaviest pack first
    assert loads[0] - loads[-1] <= max(work.values())  # LPT: within one client's work
    assert loads == [13.0, 13.0, 13.0, 12.0]  # 51 in all: as even as whole clients allow
    assert all(list(p) == sorted(p) for p in packs)
    assert [len(p) for p in make_packs(work, {0: 1, 1: 2, 2: 3}, packs=8)] == [1, 1, 1]
    # one pack per actor (ray.packs_per_actor=1): 51 as 26 + 25, heaviest client first (5, 5, 5, then the lighter)
    assert [sum(work[c] for c in p) for p in make_packs(work, seeds, packs=2)] == [26.0, 25.0]


ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.linspace(-1, 1, 7).astype(np.float16),
    np.arange(24, dtype=np.int64).reshape(2, 3, 4),
    np.array(7, dtype=np.int64),  # a 0-d buffer (BatchNorm's num_batches_tracked)
    np.zeros((0, 3)),
    np.array([True, False]),
    np.arange(6.0).reshape(2, 3).T,  # not C-ordered
]


@pytest.mark.parametrize("value", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_arrays_go_to_flower_and_back_as_flowers_own_conversions_do(value: np.ndarray) -> None:
    ours, flowers = to_array(value), Array(value)
    assert (ours.dtype, ours.shape, ours.stype) == (flowers.dtype, flowers.shape, flowers.stype)
    np.testing.assert_array_equal(ours.numpy(), value)  # Flower reads what we write
    if value.flags.c_contiguous:
        assert ours.data == flowers.data  # byte for byte
    back = from_array(flowers)  # we read what Flower writes
    assert back.dtype == value.dtype and back.shape == value.shape and back.flags.writeable
    np.testing.assert_array_equal(back, value)


def test_an_array_in_another_layout_is_read_by_numpy() -> None:
    fortran = Array(np.asfortranarray(np.arange(6.0).reshape(2, 3)))  # header: fortran_order True
    np.testing.assert_array_equal(from_array(fortran), np.arange(6.0).reshape(2, 3))


def test_pack_config_round_trips() -> None:
    plan = TrainPlan(1.5, 0.1, 16, 0.9, None)
    record = pack_to_record(plan, {7: 70, 2: 20})
    assert record_to_pack(record) == {2: 20, 7: 70}
    assert record["cids"] == [2, 7] and record["seed"] == 20
    assert record_to_pack(ConfigRecord({"seed": 1})) is None


@pytest.fixture(autouse=True)
def _flower_task(monkeypatch) -> None:
    """Outside Flower's runtime a Message needs the process's task identity."""
    from flwr.supercore.task_identity import TaskIdentity

    for name in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)


def _call(app, content: RecordDict, node_partition: int) -> Message:  # type: ignore[no-untyped-def]
    msg = Message(content, dst_node_id=1, message_type=MessageType.TRAIN, group_id="train-1")
    context = Context(1, 1, {"partition-id": node_partition, "num-partitions": 4}, RecordDict(), {})
    return app(msg, context)


def test_a_pack_gives_each_client_the_update_of_its_own_message(tiny_config, monkeypatch) -> None:
    cfg = tiny_config("fl.dropout_rate=0.5")
    task = TaskConfig.from_config(cfg)
    params = get_params(task.model_for(task.federation()))
    plan = TrainPlan.from_config(cfg)
    seeds = {0: 11, 1: 12, 2: 13, 3: 14}
    monkeypatch.setenv(FAULT_ENV, "train-1:2")
    reply = _call(
        make_client_app(task),
        RecordDict({"arrays": params_to_record(params), "config": pack_to_record(plan, seeds)}),
        0,
    )
    content = reply.content
    assert int(content.metric_records["node"]["partition-id"]) == 0  # type: ignore[call-overload]
    for cid, seed in seeds.items():
        if drops_out(seed, task.dropout_rate):
            assert content.config_records[f"error/{cid}"]["code"] == DROPOUT
        elif cid == 2:
            error = content.config_records[f"error/{cid}"]
            assert error["code"] == FAILED and str(error["reason"]).startswith("InjectedFault")
        else:
            alone = run_client(task, cid, params, plan, seed, torch.device("cpu"), "train-1")
            packed = record_to_params(content.array_records[f"arrays/{cid}"])
            assert all(np.array_equal(packed[k], alone.params[k]) for k in alone.params)
            assert content.metric_records[f"metrics/{cid}"]["num-examples"] == alone.num_examples
    assert any(f"arrays/{c}" in content for c in seeds) and any(f"error/{c}" in content for c in (0, 1, 3))


def test_a_one_client_message_keeps_its_contract(tiny_config) -> None:
    cfg = tiny_config()
    task = TaskConfig.from_config(cfg)
    params = get_params(task.model_for(task.federation()))
    plan = TrainPlan.from_config(cfg)
    reply = _call(
        make_client_app(task), RecordDict({"arrays": params_to_record(params), "config": plan_to_record(plan, 5)}), 3
    )
    alone = run_client(task, 3, params, plan, 5, torch.device("cpu"), "train-1")
    got = record_to_params(reply.content.array_records["arrays"])
    assert all(np.array_equal(got[k], alone.params[k]) for k in alone.params)
    assert reply.content.metric_records["metrics"]["partition-id"] == 3


@pytest.mark.parametrize("bad", [{"cids": [1, 2], "seeds": [1]}, {"cids": [1.5], "seeds": [1]}])
def test_a_malformed_pack_is_refused(bad: dict[str, list[float]]) -> None:
    with pytest.raises(TypeError):
        record_to_pack(ConfigRecord({"seed": 1, **bad}))
