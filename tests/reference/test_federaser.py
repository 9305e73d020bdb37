"""FedEraser against its paper (Liu et al., IWQoS 2021) and the authors' code (Fed_Unlearn_base.py,
``unlearning`` / ``unlearning_step_once``; github.com/yiliucs/FedEraser, read as Zoybzo/FedEraser-Code@c68c5ca)."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from fedunlearn import unlearning
from fedunlearn.core.task import sgd_steps
from fedunlearn.unlearning.calibration import calibrated_step
from tests.reference.conftest import SHAPES, TOL, ScriptedTrainer, context, flat, random_history


def _rand(rng: np.random.Generator, scale: float = 1.0) -> dict[str, np.ndarray]:
    return {k: (rng.normal(size=s) * scale).astype(np.float32) for k, s in SHAPES.items()}


def test_client_step_is_the_papers_formula() -> None:
    """Ũ = Σ_k p'_k ‖U_k‖ · Û_k / ‖Û_k‖ over each client's whole update."""
    rng = np.random.default_rng(2)
    old, new, n = [_rand(rng, 2.0) for _ in range(3)], [_rand(rng) for _ in range(3)], np.array([5.0, 30.0, 11.0])
    p = n / n.sum()
    oracle = sum(
        pk * np.linalg.norm(flat(o)) * flat(w) / np.linalg.norm(flat(w)) for pk, o, w in zip(p, old, new, strict=True)
    )
    np.testing.assert_allclose(flat(calibrated_step(old, new, list(p), "client")), oracle, atol=TOL)


@pytest.mark.parametrize("layer_weights", ["equal", "samples"])
def test_layer_step_is_the_authors_unlearning_step_once(layer_weights: str) -> None:
    """Per state-dict entry: ‖mean_k(oldCM_k) − oldGM‖ · (mean_k(newCM_k) − newGM)/‖·‖ (equal weights in the code)."""
    rng = np.random.default_rng(3)
    old_gm, new_gm = _rand(rng), _rand(rng)
    old_cm = [{k: v + u[k] for k, v in old_gm.items()} for u in [_rand(rng, 0.5) for _ in range(4)]]
    new_cm = [{k: v + u[k] for k, v in new_gm.items()} for u in [_rand(rng, 0.5) for _ in range(4)]]
    n = np.array([3.0, 50.0, 9.0, 21.0])
    w = np.full(4, 0.25) if layer_weights == "equal" else n / n.sum()
    got = calibrated_step(
        [{k: cm[k] - old_gm[k] for k in SHAPES} for cm in old_cm],
        [{k: cm[k] - new_gm[k] for k in SHAPES} for cm in new_cm],
        list(n / n.sum()),
        "layer",
        layer_weights,
    )
    for layer in SHAPES:
        old_update = sum(wk * cm[layer].astype(np.float64) for wk, cm in zip(w, old_cm, strict=True)) - old_gm[layer]
        new_update = sum(wk * cm[layer].astype(np.float64) for wk, cm in zip(w, new_cm, strict=True)) - new_gm[layer]
        oracle = np.linalg.norm(old_update) * new_update / np.linalg.norm(new_update)
        np.testing.assert_allclose(got[layer], oracle, atol=TOL)


def _oracle_replay(h, forget: list[int], directions, interval: int, alignment: str, granularity: str) -> np.ndarray:
    """The paper's replay from the stored (M^t, U_k^t) pairs: each U_k^t with the model its round started from."""
    rounds = sorted(h.globals)
    offset = 0 if alignment == "start" else interval - 1
    schedule = [t for t in rounds if (t - 1) % interval == offset]
    model = flat(h.globals[schedule[0]])
    for j, t in enumerate(schedule):
        keep = [c for c in h.participants[t] if c not in forget]
        n = np.array([h.counts[c] for c in keep], float)
        p = n / n.sum() if granularity == "client" else np.full(len(keep), 1 / len(keep))
        old = [flat(h.updates[t][c]) for c in keep]
        if j == 0:
            model = model + sum(pk * u for pk, u in zip(p, old, strict=True))
        elif granularity == "client":
            model = model + sum(pk * np.linalg.norm(u) * flat(directions[c]) / np.linalg.norm(flat(directions[c]))
                                for pk, u, c in zip(p, old, keep, strict=True))  # fmt: skip
        else:
            offs = np.cumsum([0] + [int(np.prod(SHAPES[k])) for k in sorted(SHAPES)])
            mean_old, mean_new = (
                sum(pk * u for pk, u in zip(p, old, strict=True)),
                sum(pk * flat(directions[c]) for pk, c in zip(p, keep, strict=True)),
            )
            for a, b in itertools.pairwise(offs):
                model[a:b] += np.linalg.norm(mean_old[a:b]) * mean_new[a:b] / np.linalg.norm(mean_new[a:b])
    return model


@pytest.mark.parametrize(("alignment", "granularity"), [("start", "client"), ("end", "client"), ("start", "layer")])
def test_whole_replay_follows_the_stored_pairs(tmp_path: Path, alignment: str, granularity: str) -> None:
    h = random_history(tmp_path, rounds=9, clients=6, seed=4)
    trainer = ScriptedTrainer(6, seed=4)
    ctx = context(h, [0], trainer, "unlearning.methods=[federaser]", f"unlearning.federaser.alignment={alignment}",
                  f"unlearning.federaser.granularity={granularity}")  # fmt: skip
    out = unlearning.create("federaser", ctx.cfg).unlearn(ctx)
    oracle = _oracle_replay(h, [0], trainer.directions, 2, alignment, granularity)
    np.testing.assert_allclose(flat(out.params), oracle, atol=TOL * 10)
    # the calibration clients are the remaining participants of each replayed round, never the forgotten one
    replayed = out.info["replayed_rounds"]
    assert replayed == ([1, 3, 5, 7, 9] if alignment == "start" else [2, 4, 6, 8])
    for group, _, asked, _ in trainer.calls:
        t = int(group.split("-")[1])
        assert asked == [c for c in h.participants[t] if c != 0]


def test_the_authors_wrong_round_pairing_is_not_used(tmp_path: Path) -> None:
    """The code pairs round t's client models with the global model *after* round t; fedunlearn does not."""
    h = random_history(tmp_path, rounds=5, clients=4, seed=5, participation=1.0)
    trainer = ScriptedTrainer(4, seed=5)
    ctx = context(h, [0], trainer, "unlearning.methods=[federaser]", "unlearning.federaser.interval=1")
    out = flat(unlearning.create("federaser", ctx.cfg).unlearn(ctx).params)
    for t in range(1, 5):  # the buggy pairing: U' = (M^t + U^t) − M^{t+1}
        nxt = h.globals[t + 1]
        h.updates[t] = {c: {k: h.globals[t][k] + u[k] - nxt[k] for k in u} for c, u in h.updates[t].items()}
    buggy = _oracle_replay(h, [0], trainer.directions, 1, "start", "client")
    assert np.linalg.norm(out - buggy) > 1e-2


@pytest.mark.parametrize(
    ("n", "batch", "local_epochs", "ratio"), [(45, 16, 1, 0.5), (45, 16, 4, 0.5), (100, 32, 3, 0.3)]
)
def test_calibration_trains_ratio_times_the_local_steps(
    tmp_path: Path, n: int, batch: int, local_epochs: int, ratio: float
) -> None:
    """r × training's local SGD steps (the paper's "r × the local training"); the authors' code rounds up to
    ceil(r·E) whole epochs, which differs whenever r·E is not whole."""
    steps_per_epoch = math.ceil(n / batch)
    assert sgd_steps(n, batch, ratio * local_epochs) == max(1, round(ratio * local_epochs * steps_per_epoch))
    h = random_history(tmp_path, rounds=3, clients=3, seed=6, participation=1.0)
    trainer = ScriptedTrainer(3, seed=6)
    ctx = context(h, [0], trainer, "unlearning.methods=[federaser]", f"fl.local_epochs={local_epochs}",
                  f"unlearning.federaser.calibration_ratio={ratio}")  # fmt: skip
    unlearning.create("federaser", ctx.cfg).unlearn(ctx)
    assert {plan.epochs for *_, plan in trainer.calls} == {ratio * local_epochs}
