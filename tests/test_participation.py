"""Partial participation and dropouts: every method, in-process, with clients sampled and failing."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedunlearn.core.federation import LocalTrainer, Replies
from fedunlearn.core.params import Params
from fedunlearn.core.task import TrainPlan, drops_out
from fedunlearn.flower.server_app import max_concurrency
from fedunlearn.history import HistoryStore
from fedunlearn.seeds import Stream, client_seed
from tests.conftest import TINY, local_trainer, make_config, run_in_process

FORGET = 1
OVERRIDES = (
    *TINY,
    "fl.num_clients=8",
    "fl.num_rounds=6",
    "fl.fraction_train=0.5",
    "fl.dropout_rate=0.25",
    "dataset.num_samples=640",
    f"backdoor.clients=[{FORGET}]",
    f"forget.clients=[{FORGET}]",
    "unlearning.methods=all",
)


class SpyTrainer:
    """The in-process trainer, recording which clients each call asked and which replied."""

    def __init__(self, inner: LocalTrainer) -> None:
        self.inner = inner
        self.calls: list[tuple[str, list[int], list[int]]] = []

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        replies = self.inner.train(params, seeds, plan, group)
        self.calls.append((group, sorted(seeds), [u.cid for u in replies]))
        return replies


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], SpyTrainer, Path]:
    cfg = make_config(*OVERRIDES)
    spy = SpyTrainer(local_trainer(cfg))
    run_dir = tmp_path_factory.mktemp("participation")
    return run_in_process(cfg, run_dir, spy), spy, run_dir


def test_dropout_is_a_pure_function_of_the_seed() -> None:
    seeds = [client_seed(0, Stream.TRAINING, t, c) for t in range(1, 201) for c in range(10)]
    dropped = [drops_out(s, 0.25) for s in seeds]
    assert dropped == [drops_out(s, 0.25) for s in seeds]
    assert 0.2 < np.mean(dropped) < 0.3
    assert not any(drops_out(s, 0.0) for s in seeds)


def test_max_concurrency_counts_overlapping_spans() -> None:
    assert max_concurrency([]) == 0
    assert max_concurrency([(0, 2), (1, 3), (2, 4)]) == 2  # the first ends as the third starts
    assert max_concurrency([(0, 5), (1, 2), (1.5, 3), (4, 6)]) == 3


def test_history_records_who_actually_contributed(run) -> None:
    res, _, run_dir = run
    store = HistoryStore.open(run_dir / "history")
    failed_any = False
    for record in res["training"]["rounds"]:
        asked = sorted(record["clients"] + record["failed_clients"])
        assert len(asked) == 4  # half of 8 sampled
        assert store.participants(record["round"]) == record["clients"]
        failed_any |= bool(record["failed_clients"])
    assert failed_any, "with dropout_rate 0.25 some client should fail in 6 rounds"


def test_no_method_asks_the_forgotten_client_and_all_finish(run) -> None:
    """Only an unlearning step that needs the leaving client's own training (PUF's) asks it; nothing else does."""
    res, spy, _ = run
    unlearning_calls = [c for c in spy.calls if not c[0].startswith("train-")]
    assert unlearning_calls
    for group, asked, _ in unlearning_calls:
        if group.startswith("puf-unlearn-"):
            assert asked == [FORGET], group
        else:
            assert FORGET not in asked, group
    for name, entry in res["unlearning"].items():
        assert entry["metrics"]["test_accuracy"] > 0.3, name


def test_retrain_replays_the_contributors_exactly(run) -> None:
    res, spy, _ = run
    training = {r["round"]: r["clients"] for r in res["training"]["rounds"]}
    retrain_asked = {int(g.split("-")[1]): asked for g, asked, _ in spy.calls if g.startswith("retrain-")}
    for round_, clients in training.items():
        assert retrain_asked.get(round_, []) == [c for c in clients if c != FORGET]
    # the same seeds make the same clients succeed: retrain loses nobody to dropouts
    assert all(asked == replied for g, asked, replied in spy.calls if g.startswith("retrain-"))
    # rollback restarts from the round the client joined, with the same seeds: it lands on retrain
    assert res["unlearning"]["rollback"]["metrics"]["l2_to_retrain"] == pytest.approx(0.0, abs=1e-5)
