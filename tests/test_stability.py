"""Every offline dataset × model trains stably with the model's default local SGD, and the divergence guard says so
when training does not."""

import math
from pathlib import Path

import pytest

from fedunlearn.core.fedavg import RoundRecord, divergence
from tests.conftest import FASHION_FILES, make_config, run_in_process

COMBINATIONS = {
    "digits-mlp": ["fl.num_rounds=8"],
    "digits-cnn": ["model=cnn", "fl.num_rounds=8"],
    "synthetic-flat-mlp": ["dataset=synthetic", "dataset.shape=[64]", "fl.num_rounds=8"],
    "synthetic-image-mlp": ["dataset=synthetic", "fl.num_rounds=8"],
    "synthetic-image-cnn": ["dataset=synthetic", "model=cnn", "fl.num_rounds=8"],
    "digits-resnet18": ["model=resnet18", "model.hidden=8", "fl.num_rounds=8"],
    # where lr 0.1 with momentum 0.9 collapses the cnn to one class, and a harder one where a
    # smaller step sits at chance for most of the run
    "synthetic-16x16-cnn-hard": ["dataset=synthetic", "dataset.shape=[1,16,16]", "dataset.num_samples=8000",
                                 "dataset.class_sep=1.2", "model=cnn", "fl.num_clients=20", "fl.local_epochs=2",
                                 "fl.batch_size=32", "fl.num_rounds=16"],
    "synthetic-16x16-cnn-30-clients": ["dataset=synthetic", "dataset.shape=[1,16,16]", "dataset.num_samples=4000",
                                       "model=cnn", "fl.num_clients=30", "fl.fraction_train=0.5", "fl.local_epochs=2",
                                       "fl.num_rounds=20"],
}  # fmt: skip
FASHION = [
    "dataset=fashion_mnist",
    "dataset.max_train_samples=1200",
    "dataset.max_test_samples=600",
    "fl.num_clients=4",
]
REAL = {  # Fashion-MNIST (Debian's dataset-fashion-mnist), subsampled to stay fast: a lower bar than above
    "fashion_mnist-cnn": [*FASHION, "model=cnn", "fl.num_rounds=5"],
    "fashion_mnist-flnet": [*FASHION, "model=flnet", "fl.num_rounds=4", "fl.local_epochs=2"],
    "fashion_mnist-flnet-crab": [*FASHION, "model=flnet", "model.padding=[0,0]", "fl.num_rounds=4", "fl.optimizer=adam",
                                 "fl.lr=0.005", "fl.momentum=0", "fl.batch_size=64", "dataset.normalize=[0.5,0.5]"],
}  # fmt: skip


def _stable(tmp_path: Path, overrides: list[str], final: float) -> None:
    cfg = make_config("experiment=train_only", "backdoor.clients=[0]", *overrides)
    training = run_in_process(cfg, tmp_path)["training"]
    accuracy = [r["test_accuracy"] for r in training["rounds"]]
    assert training["diverged"] is None
    assert accuracy[-1] > final, accuracy
    assert min(accuracy[accuracy.index(max(accuracy)) :]) > max(accuracy) - 0.1, accuracy  # no collapse after the peak


@pytest.mark.parametrize("overrides", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_trains_stably_with_the_models_defaults(tmp_path: Path, overrides: list[str]) -> None:
    _stable(tmp_path, overrides, 0.85)


@pytest.mark.skipif(not FASHION_FILES.exists(), reason="needs Debian's package dataset-fashion-mnist "
                    "(apt-get install dataset-fashion-mnist)")  # fmt: skip
@pytest.mark.parametrize("overrides", REAL.values(), ids=REAL.keys())
def test_trains_stably_on_fashion_mnist(tmp_path: Path, overrides: list[str]) -> None:
    _stable(tmp_path, overrides, 0.65)


def rounds(*accuracies: float, loss: float = 0.5) -> list[RoundRecord]:
    return [RoundRecord(i + 1, a, loss, 0.1, [0]) for i, a in enumerate(accuracies)]


def test_the_guard_flags_a_fall_to_chance_and_a_non_finite_loss() -> None:
    assert divergence(rounds(0.3, 0.8, 0.95, 0.97), 10) is None
    assert divergence(rounds(0.1, 0.12, 0.15), 10) is None  # never well above chance: slow, not diverged
    reason = divergence(rounds(0.5, 0.99, 0.21, 0.106), 10)
    assert reason is not None and "fell to 0.106 at round 4" in reason and "0.990 at round 2" in reason
    assert divergence(rounds(0.5, 0.9, loss=math.nan), 10) == "the test loss is nan at round 2"


def test_a_diverged_training_is_recorded_and_can_stop_the_run(tmp_path: Path) -> None:
    overrides = ("experiment=train_only", "dataset=synthetic", "fl.num_rounds=4", "fl.lr=1000", "fl.momentum=0.9")
    diverged = run_in_process(make_config(*overrides), tmp_path / "warn")["training"]["diverged"]
    assert diverged == {"round": 1, "reason": "the test loss is nan at round 1"}
    from fedunlearn.experiment.stages import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"fl\.on_divergence=error"):
        run_in_process(make_config(*overrides, "fl.on_divergence=error"), tmp_path / "error")
