"""history.client_stats: the per-client scalars training records for Crab (received_loss) and SIFU (distance),
what ``auto`` records, and that the methods select the same from them as from the stored models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fedunlearn.config import ConfigError
from fedunlearn.core.params import set_params
from fedunlearn.data import federated_data
from fedunlearn.experiment.stages import recorded_stats
from fedunlearn.history import HistoryStore
from fedunlearn.models import build_model
from fedunlearn.unlearning.methods.crab import RECEIVED_LOSS
from fedunlearn.unlearning.methods.sifu import DISTANCE, round_distances
from tests.conftest import TINY, make_config, run_in_process

RUN = [*TINY, "fl.num_rounds=5", "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[crab,sifu]"]


@pytest.mark.parametrize(
    ("setting", "methods", "expected"),
    [
        ("auto", "[crab]", {RECEIVED_LOSS}),
        ("auto", "[sifu,federaser]", {DISTANCE}),
        ("auto", "[federaser,fedrecover]", set()),
        ("auto", "all", {RECEIVED_LOSS, DISTANCE}),
        ("all", "[federaser]", {RECEIVED_LOSS, DISTANCE}),
        ("none", "[crab,sifu]", set()),
    ],
)
def test_auto_records_what_the_requested_methods_read(setting: str, methods: str, expected: set[str]) -> None:
    cfg = make_config(f"history.client_stats={setting}", f"unlearning.methods={methods}", "forget.clients=[0]")
    assert recorded_stats(cfg) == expected


def test_a_bad_value_names_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"auto.*all.*none") as err:
        make_config("history.client_stats=some")
    assert err.value.key == "history.client_stats"


def _run(tmp_path: Path, name: str, setting: str) -> tuple[dict[str, Any], HistoryStore]:
    cfg = make_config(*RUN, f"history.client_stats={setting}")
    res = run_in_process(cfg, tmp_path / name)
    return res, HistoryStore.open(tmp_path / name / "history")


def test_recorded_stats_are_what_the_methods_computed_from_the_history(tmp_path: Path) -> None:
    """Each client's received_loss is its data's mean loss under the round's starting model; each distance is
    ‖θ^{t+1} − θ_c^{t+1}‖ from the stored models; Crab and SIFU select the same with and without them."""
    recorded, h = _run(tmp_path, "recorded", "auto")
    computed, plain = _run(tmp_path, "computed", "none")
    cfg = make_config(*RUN)
    data = federated_data(cfg)
    model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)
    rounds = h.rounds()
    for i, t in enumerate(rounds):
        losses, distances = h.client_stats(t, RECEIVED_LOSS), h.client_stats(t, DISTANCE)
        assert losses is not None and distances is not None
        assert sorted(losses) == sorted(distances) == h.participants(t)
        assert plain.client_stats(t, RECEIVED_LOSS) is None and plain.client_stats(t, DISTANCE) is None
        set_params(model, h.global_model(t))
        model.eval()
        for c in h.participants(t):
            own = data.client(c)
            with torch.no_grad():
                logits = model(torch.from_numpy(own.x)).numpy().astype(np.float64)
            shifted = logits - logits.max(axis=1, keepdims=True)
            oracle = float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(own.y)), own.y]))
            assert losses[c] == pytest.approx(oracle, rel=1e-5)
        if i + 1 < len(rounds):  # after the last round θ^{t+1} is the trained model, which the history lacks
            assert distances == pytest.approx(round_distances(plain, rounds, i, {}, h.participants(t)), rel=1e-5)
    crab_a, crab_b = recorded["unlearning"]["crab"], computed["unlearning"]["crab"]
    assert (crab_a["info"]["losses"], crab_b["info"]["losses"]) == ("recorded", "evaluated")
    for key in ("kept_rounds", "replayed_rounds", "replayed_updates"):
        assert crab_a["info"][key] == crab_b["info"][key]
    sifu_a, sifu_b = recorded["unlearning"]["sifu"], computed["unlearning"]["sifu"]
    assert sifu_a["info"]["rollback_aggregations"] == sifu_b["info"]["rollback_aggregations"]
    assert sifu_a["info"]["psi_final"] == pytest.approx(sifu_b["info"]["psi_final"], rel=1e-5)
    for a, b in ((crab_a, crab_b), (sifu_a, sifu_b)):
        assert a["metrics"]["test_accuracy"] == pytest.approx(b["metrics"]["test_accuracy"], abs=1e-6)


def test_arrays_read_back_come_in_name_order(tmp_path: Path) -> None:
    """safetensors returns a file's arrays in an order that varies between processes: the history and the checkpoints
    return them sorted, so nothing downstream can depend on it (SIFU drew its noise in that order)."""
    from fedunlearn.experiment.checkpoint import load_params, save_params

    params = {
        "z.weight": np.ones((2, 3), np.float32),
        "a.bias": np.zeros(2, np.float32),
        "m.w": np.eye(2, dtype=np.float32),
    }
    store = HistoryStore(tmp_path / "h")
    store.record_round(1, params, {0: params}, {0: 5})
    assert list(store.global_model(1)) == list(store.client_update(1, 0)) == sorted(params)
    save_params(tmp_path / "m.safetensors", params)
    assert list(load_params(tmp_path / "m.safetensors")) == sorted(params)


def test_sifu_noise_and_not_first_layer_do_not_depend_on_array_order(tmp_path: Path) -> None:
    """The same trained model given with its arrays in another order: the same SIFU restart, and NoT negates the
    architecture's first weight tensor, not the first in the dict."""
    from fedunlearn import unlearning
    from tests.reference.conftest import ScriptedTrainer, context, random_history

    h = random_history(tmp_path, rounds=4, clients=5, seed=31)
    outs = []
    for reverse in (False, True):
        ctx = context(h, [0], ScriptedTrainer(6, seed=31), "unlearning.methods=[sifu]", "unlearning.sifu.epsilon=1e12",
                      "unlearning.sifu.recovery.stop=rounds", "unlearning.sifu.recovery.max_rounds=0")  # fmt: skip
        ctx.trained = dict(sorted(ctx.trained.items(), reverse=reverse))
        outs.append(unlearning.create("sifu", ctx.cfg).unlearn(ctx).params)
    assert all(np.array_equal(outs[0][k], outs[1][k]) for k in outs[0])
    cfg = make_config(*TINY, "unlearning.methods=[fednot]", "forget.clients=[0]", "backdoor.clients=[]",
                      "unlearning.fednot.recovery.stop=rounds", "unlearning.fednot.recovery.max_rounds=0")  # fmt: skip
    data = federated_data(cfg)
    model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)
    first = next(k for k, v in model.state_dict().items() if v.ndim >= 2)
    trained = {k: v.detach().numpy().copy() for k, v in reversed(model.state_dict().items())}
    ctx = context(h, [0], ScriptedTrainer(6, seed=31), "unlearning.methods=[fednot]",
                  "unlearning.fednot.recovery.stop=rounds", "unlearning.fednot.recovery.max_rounds=0")  # fmt: skip
    ctx.cfg, ctx.data, ctx.trained = cfg, data, trained
    out = unlearning.create("fednot", cfg).unlearn(ctx)
    assert out.info["negated"] == [first]
