"""Compute counts all the work, in sample-gradient equivalents (SGE): every figure below is recounted by hand from the
run's data and configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fedunlearn.data import federated_data
from fedunlearn.results import Compute
from tests.conftest import TINY, make_config, run_in_process

RUN = (*TINY, "backdoor.clients=[1]", "forget.clients=[1]")


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Any]:
    cfg = make_config(
        *RUN, "unlearning.methods=[retrain,kd,fedquit,crab]", "unlearning.kd.epochs=3",
        "unlearning.fedquit.recovery.stop=rounds", "unlearning.fedquit.recovery.max_rounds=1",
    )  # fmt: skip
    return run_in_process(cfg, tmp_path_factory.mktemp("compute")), cfg


def test_the_unit_counts_a_forward_pass_as_a_third(done: tuple[dict[str, Any], Any]) -> None:
    assert Compute(10.0, 30.0, 5.0, 6.0).sge == pytest.approx(10 + 5 + (30 + 6) / 3)
    res, _ = done
    for entry in (res["training"], *res["unlearning"].values()):
        c = entry["compute"]
        assert c["sge"] == pytest.approx(
            c["client_training"] + c["server_training"] + (c["client_forward"] + c["server_forward"]) / 3
        )


def test_training_and_retrain_count_every_sample_trained(done: tuple[dict[str, Any], Any]) -> None:
    res, cfg = done
    sizes = [len(p) for p in federated_data(cfg).partitions]
    rounds, epochs = cfg.fl.num_rounds, cfg.fl.local_epochs
    training = res["training"]["compute"]
    assert training["client_training"] == rounds * epochs * sum(sizes)
    # crab reads the received-model losses training records: one forward pass over each participant's data
    assert training["client_forward"] == rounds * sum(sizes) and training["server_training"] == 0
    retrain = res["unlearning"]["retrain"]["compute"]
    assert retrain["client_training"] == rounds * epochs * (sum(sizes) - sizes[1]) and retrain["client_forward"] == 0


def test_server_distillation_and_a_leaving_clients_work_are_counted(done: tuple[dict[str, Any], Any]) -> None:
    res, cfg = done
    data = federated_data(cfg)
    kd = res["unlearning"]["kd"]["compute"]
    assert kd["server_training"] == 3 * len(data.server) and kd["server_forward"] == len(data.server)
    assert kd["client_training"] == 0 and res["unlearning"]["kd"]["client_epochs"] == 0
    fedquit = res["unlearning"]["fedquit"]["compute"]
    own = len(data.partitions[1])
    recovery = cfg.fl.local_epochs * sum(len(p) for c, p in enumerate(data.partitions) if c != 1)
    assert fedquit["client_training"] == own + recovery  # one distillation epoch, then one recovery round
    assert fedquit["client_forward"] == own  # the teacher's logits on the leaving client's data


def test_speedup_in_compute_is_retrains_over_the_methods(done: tuple[dict[str, Any], Any]) -> None:
    res, _ = done
    retrain = res["unlearning"]["retrain"]["compute"]["sge"]
    for name, entry in res["unlearning"].items():
        assert entry["speedup_vs_retrain"]["compute"] == pytest.approx(retrain / entry["compute"]["sge"]), name


def test_a_federated_evaluation_is_a_forward_pass_over_the_remaining_clients(tmp_path: Path) -> None:
    cfg = make_config(*RUN, "unlearning.methods=[fednot]", "unlearning.fednot.recovery.max_rounds=2")
    res = run_in_process(cfg, tmp_path)
    entry = res["unlearning"]["fednot"]
    remaining = sum(len(p) for c, p in enumerate(federated_data(cfg).partitions) if c != 1)
    evaluations = entry["info"]["federated_evaluations"]
    assert evaluations >= 2 and entry["compute"]["client_forward"] == evaluations * remaining


def test_distillation_to_convergence_stops_and_counts_the_epochs_it_ran(tmp_path: Path) -> None:
    """kd_recover's distillation stops once an epoch's loss is ``tolerance`` × the first's: its work follows the
    problem, and compute counts the epochs that ran."""
    cfg = make_config(*RUN, "unlearning.methods=[kd]", "unlearning.kd.epochs=60", "unlearning.kd.tolerance=0.3")
    entry = run_in_process(cfg, tmp_path)["unlearning"]["kd"]
    ran = entry["info"]["distill_epochs"]
    assert 1 < ran < 60
    assert entry["compute"]["server_training"] == ran * len(federated_data(cfg).server)
