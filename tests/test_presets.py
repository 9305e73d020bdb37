"""The published protocols' presets compose to the papers' settings (../shared/PROTOCOLS.md) and their models have
the papers' shapes; every preset validates."""

from pathlib import Path

import pytest
from torch import nn

from fedunlearn.models import MODELS
from tests.conftest import make_config

PRESETS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_validates(preset: str) -> None:
    assert make_config(f"experiment={preset}").experiment == preset


def _fc1_inputs(padding: tuple[int, int]) -> int:
    model = MODELS["flnet"]((1, 28, 28), 10, 512, padding)
    return next(m for m in model.modules() if isinstance(m, nn.Linear)).in_features


def test_pga_paper_is_the_notebooks_setting() -> None:
    cfg = make_config("experiment=pga_paper")
    assert (cfg.dataset.name, cfg.model.name, cfg.partition.name) == ("fashion_mnist", "flnet", "iid")
    assert (cfg.fl.num_clients, cfg.fl.num_rounds, cfg.fl.local_epochs, cfg.fl.batch_size) == (5, 10, 1, 128)
    assert (cfg.fl.lr, cfg.fl.momentum) == (0.01, 0.9)
    assert (cfg.backdoor.clients, cfg.backdoor.fraction, cfg.backdoor.target_label) == ([0], 0.8, 9)
    assert (cfg.backdoor.trigger, cfg.backdoor.skip_target, cfg.forget.clients) == ("pattern", True, [0])
    assert (cfg.unlearning.pga.post_rounds, cfg.unlearning.pga.post_max_steps) == (1, 51)
    assert _fc1_inputs(tuple(cfg.model.padding)) == 7 * 7 * 64  # IBM's FLNet: fc1 3136 → 512


def test_crab_paper_is_the_authors_run() -> None:
    cfg = make_config("experiment=crab_paper")
    assert (cfg.dataset.name, cfg.model.name, cfg.fl.num_clients, cfg.fl.num_rounds) == (
        "fashion_mnist",
        "flnet",
        20,
        16,
    )
    assert (cfg.fl.optimizer, cfg.fl.lr, cfg.fl.batch_size, cfg.fl.local_epochs) == ("adam", 0.005, 256, 5)
    assert cfg.fl.fraction_train == 1.0
    assert cfg.backdoor.clients == list(range(10)) == cfg.forget.clients
    assert (cfg.backdoor.target_label, cfg.backdoor.trigger_size, cfg.backdoor.fraction) == (2, 4, 1.0)
    assert cfg.unlearning.methods == ["retrain", "federaser", "crab"]
    assert _fc1_inputs(tuple(cfg.model.padding)) == 4 * 4 * 64  # FedAvgCNN: fc1 1024 → 512
