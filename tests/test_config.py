import subprocess
import sys
from pathlib import Path

import pytest

from fedunlearn.config import ConfigError
from tests.conftest import make_config


def test_default_config_is_the_showcase() -> None:
    cfg = make_config()
    assert cfg.dataset.name == "digits" and cfg.model.name == "mlp" and cfg.partition.name == "iid"
    assert cfg.fl.num_clients == 10
    assert cfg.forget.clients == [0] and cfg.backdoor.clients == [0]
    assert list(cfg.unlearning.methods) == ["retrain", "kd_recover", "federaser", "fedaccum"]


@pytest.mark.parametrize(
    "override,key",
    [
        ("fl.num_clients=0", "fl.num_clients"),
        ("fl.fraction_train=1.5", "fl.fraction_train"),
        ("fl.fraction_train=0", "fl.fraction_train"),
        ("history.dtype=float64", "history.dtype"),
        ("forget.clients=[10]", "forget.clients"),
        ("backdoor.clients=[-1]", "backdoor.clients"),
        ("unlearning.methods=[retrain,magic]", "unlearning.methods"),
        ("unlearning.federaser.granularity=model", "unlearning.federaser.granularity"),
        ("unlearning.federaser.calibration_ratio=0", "unlearning.federaser.calibration_ratio"),
        ("partition.alpha=0", "partition.alpha"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(override)
    assert err.value.key == key


def test_history_interval_must_allow_the_replay_interval() -> None:
    with pytest.raises(ConfigError, match=r"multiple of history\.interval"):
        make_config("unlearning.methods=[retrain,federaser,fedaccum]", "history.interval=3")
    make_config("unlearning.methods=[retrain,federaser,fedaccum]", "history.interval=2")  # divides their interval 2
    with pytest.raises(ConfigError, match=r"history\.interval: must be 1 for kd_recover"):
        make_config("history.interval=2")  # the showcase's kd_recover reads every round


def test_forgetting_everyone_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one client must remain"):
        make_config("fl.num_clients=2", "forget.clients=[0,1]", "backdoor.clients=[]")


@pytest.mark.parametrize(
    "override,message",
    [
        ("fl.num_clients=0", "fl.num_clients: must be >= 1, got 0"),
        ("fl.fraction_train=1.5", "fl.fraction_train: must be in (0.0, 1.0], got 1.5"),
        ("dataset=imagenet", "dataset: no option 'imagenet'; available: cifar10, digits, fashion_mnist, mnist"),
        ("fl.no_such_key=1", "fl.no_such_key: no such key"),
        ("fl.num_rounds=abc", "fl.num_rounds"),
    ],
)
def test_cli_rejects_bad_config_with_one_message(tmp_path: Path, override: str, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fedunlearn", override, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout


def test_the_configs_model_choices_are_the_model_builders() -> None:
    """config.py cannot import the models (they import it); its list of names must follow theirs."""
    from fedunlearn import config, models

    assert set(config.MODELS) == set(models.MODELS)
    assert {p.stem for p in (Path(__file__).parents[1] / "conf" / "model").glob("*.yaml")} == set(models.MODELS)
