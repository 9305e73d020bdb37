"""Unlearning methods run in-process (LocalTrainer: the ClientApp's training without Ray)."""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from fedunlearn import unlearning
from fedunlearn.config import Config
from fedunlearn.core.fedavg import replay_rounds
from fedunlearn.core.federation import CostMeter, Replies
from fedunlearn.core.params import Params, flatten, get_params
from fedunlearn.core.task import ClientUpdate, TrainPlan
from fedunlearn.data import federated_data
from fedunlearn.evaluation import Evaluator
from fedunlearn.experiment.schedule import training_schedule
from fedunlearn.history import HistoryStore
from fedunlearn.models import build_model
from fedunlearn.unlearning import UnlearningContext
from tests.conftest import local_trainer, run_in_process


def train(cfg: Config, root: Path) -> tuple[Params, HistoryStore, Evaluator, object]:
    data = federated_data(cfg)
    trainer = local_trainer(cfg)
    store = HistoryStore(root / "history", cfg.history.interval, cfg.history.dtype)
    evaluator = Evaluator(cfg, data, list(cfg.forget.clients))
    init = get_params(build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed))

    def record(round_: int, params: Params, new: Params, deltas: dict[int, Params], replies: Replies) -> None:
        store.record_round(round_, params, deltas, {u.cid: u.num_examples for u in replies})

    trained, _ = replay_rounds(
        trainer, init, training_schedule(cfg), TrainPlan.from_config(cfg), cfg.seed, evaluator.test, "train",
        on_round=record,
    )  # fmt: skip
    return trained, store, evaluator, trainer


def context(cfg: Config, store: HistoryStore, trainer: object, trained: Params, evaluate: object) -> UnlearningContext:
    return UnlearningContext(
        cfg,
        store,
        list(cfg.forget.clients),
        CostMeter(trainer),
        trained,
        evaluate,
        federated_data(cfg),  # type: ignore[arg-type]
    )


def unlearn(
    name: str, cfg: Config, store: HistoryStore, trained: Params, trainer, evaluator
) -> tuple[Params, CostMeter]:
    ctx = context(cfg, store, trainer, trained, evaluator.test)
    return unlearning.create(name, cfg).unlearn(ctx).params, ctx.clients


def test_registry_lists_methods() -> None:
    assert {"retrain", "federaser", "fedaccum"} <= set(unlearning.registered())
    with pytest.raises(KeyError, match="allowed"):
        unlearning.create("nope", None)  # type: ignore[arg-type]


def test_retrain_of_a_client_that_never_trained_reproduces_training(tiny_config, tmp_path) -> None:
    # with 2 of 4 clients sampled per round, find a client that was never sampled
    cfg = tiny_config("fl.fraction_train=0.25", "fl.num_rounds=2", "forget.clients=[2]", "backdoor.clients=[]")
    trained, store, evaluator, trainer = train(cfg, tmp_path)
    absent = [c for c in range(4) if store.first_round_of([c]) is None]
    assert absent, "the seeded sampling should leave a client out"
    cfg.forget.clients = [absent[0]]
    params, meter = unlearn("retrain", cfg, store, trained, trainer, evaluator)
    np.testing.assert_array_equal(flatten(params), flatten(trained))
    assert meter.cost.client_epochs == 2 * 1 * cfg.fl.local_epochs


def test_retrain_cost_and_exclusion(tiny_config, tmp_path) -> None:
    cfg = tiny_config()
    trained, store, evaluator, trainer = train(cfg, tmp_path)
    params, meter = unlearn("retrain", cfg, store, trained, trainer, evaluator)
    assert meter.cost.rounds == 4 and meter.cost.client_updates == 4 * 3
    assert meter.cost.client_epochs == 4 * 3 * cfg.fl.local_epochs
    assert not np.array_equal(flatten(params), flatten(trained))


class DirectionTrainer:
    """Each client moves the model by a fixed per-client direction: makes FedEraser's steps hand-checkable."""

    def __init__(self, directions: dict[int, float]) -> None:
        self.directions = directions
        self.calls: list[Params] = []

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        self.calls.append(params)
        return Replies(
            ClientUpdate(c, {k: v + self.directions[c] for k, v in params.items()}, 10, plan.epochs, 0.0)
            for c in sorted(seeds)
        )


def test_federaser_calibrates_against_the_round_start_model(tiny_config, tmp_path) -> None:
    cfg = tiny_config("fl.num_rounds=3", "history.interval=1", "unlearning.federaser.interval=2")
    store = HistoryStore(tmp_path, 1)
    shape = {"w": np.zeros(4, np.float32)}
    # stored updates: client 0 (forgotten) huge, clients 1..3 with norm 2 (entries 1)
    for t in (1, 2, 3):
        upd = {0: {"w": np.full(4, 100.0, np.float32)}, **{c: {"w": np.full(4, 1.0, np.float32)} for c in (1, 2, 3)}}
        store.record_round(t, {"w": np.full(4, float(t), np.float32)}, upd, dict.fromkeys(range(4), 10))
    trainer = DirectionTrainer({1: -0.5, 2: -0.5, 3: -0.5})
    cfg.forget.clients = [0]
    ctx = context(cfg, store, trainer, shape, lambda p: (0.0, 0.0))
    out = unlearning.create("federaser", cfg).unlearn(ctx)
    # step 1 (round 1): M^1 + mean U = 1 + 1 = 2, no training
    # step 2 (round 3): clients train from 2 → direction -0.5 each; calibrated to ‖U‖ = 2 → -1 per entry
    np.testing.assert_allclose(trainer.calls[0]["w"], np.full(4, 2.0))
    np.testing.assert_allclose(out.params["w"], np.full(4, 1.0))
    assert len(trainer.calls) == 1 and out.info["calibration_epochs"] == 1


def test_fedaccum_sums_remaining_updates(tiny_config, tmp_path) -> None:
    cfg = tiny_config("fl.num_rounds=3", "unlearning.fedaccum.interval=1")
    store = HistoryStore(tmp_path, 1)
    for t in (1, 2, 3):
        upd = {
            0: {"w": np.full(2, 9.0, np.float32)},
            1: {"w": np.full(2, 1.0, np.float32)},
            2: {"w": np.full(2, 3.0, np.float32)},
        }
        store.record_round(t, {"w": np.zeros(2, np.float32)}, upd, {0: 10, 1: 10, 2: 30})
    cfg.forget.clients = [0]
    ctx = context(cfg, store, DirectionTrainer({}), {}, lambda p: (0.0, 0.0))
    meter = ctx.clients
    out = unlearning.create("fedaccum", cfg).unlearn(ctx)
    # each round adds 0.25·1 + 0.75·3 = 2.5 → 7.5 after three rounds
    np.testing.assert_allclose(out.params["w"], [7.5, 7.5])
    assert meter.cost.client_epochs == 0


def test_experiment_in_process_removes_the_backdoor(tiny_config, tmp_path) -> None:
    cfg = tiny_config(
        "fl.num_rounds=8",
        "fl.lr=0.1",
        "backdoor.clients=[1]",
        "forget.clients=[1]",
        "backdoor.fraction=1.0",
    )
    results = run_in_process(cfg, tmp_path)
    before = results["before_unlearning"]["metrics"]
    retrain = results["unlearning"]["retrain"]["metrics"]
    federaser = results["unlearning"]["federaser"]
    assert before["backdoor_asr"] > 0.5
    assert retrain["backdoor_asr"] < 0.2 and federaser["metrics"]["backdoor_asr"] < 0.2
    assert retrain["l2_to_retrain"] == 0.0
    # 8 rounds, Δt = 2 → 4 steps, 3 with calibration at ⌈0.5·2⌉ = 1 epoch on 3 clients
    assert federaser["client_epochs"] == 3 * 3 * 1
    assert federaser["speedup_vs_retrain"]["client_epochs"] == pytest.approx(8 * 3 * 2 / 9)
    assert results["unlearning"]["fedaccum"]["speedup_vs_retrain"]["client_epochs"] is None


def test_same_seed_same_training(tiny_config, tmp_path) -> None:
    cfg = tiny_config("experiment=train_only")
    a, *_ = train(cfg, tmp_path / "a")
    b, *_ = train(cfg, tmp_path / "b")
    np.testing.assert_array_equal(flatten(a), flatten(b))
