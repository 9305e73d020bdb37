"""PUF, NoT, FedQUIT, Crab and SIFU against numpy oracles written from their papers and the authors' code
(references in each module's docstring), on random inputs with unequal client weights."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fedunlearn import unlearning
from fedunlearn.core.params import distances_to
from fedunlearn.unlearning.methods.crab import parameter_kl, select, similarity
from fedunlearn.unlearning.methods.fednot import negate_first_layers
from fedunlearn.unlearning.methods.fedquit import fedquit_loss
from fedunlearn.unlearning.methods.puf import puf_step
from fedunlearn.unlearning.methods.sifu import psi_star, sensitivities
from tests.reference.conftest import (
    SHAPES,
    TOL,
    ScriptedTrainer,
    context,
    cosine_oracle,
    flat,
    kl_oracle,
    random_history,
)


def _rand(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}


# -- PUF ----------------------------------------------------------------------------------------------


def test_puf_special_and_regular_steps_are_the_codes() -> None:
    """main_puf.py: special: w − η Σ_U (n_u/Σ_U n) Δ_u;
    regular: w + Σ_R (n_k/N) Δ_k − η Σ_U (n_u/N) Δ_u, N over R ∪ U."""
    rng = np.random.default_rng(20)
    leaving = [(_rand(rng), 30), (_rand(rng), 7)]
    remaining = [(_rand(rng), 12), (_rand(rng), 55), (_rand(rng), 3)]
    special = -2.0 * sum(n * flat(d) for d, n in leaving) / 37
    np.testing.assert_allclose(flat(puf_step(leaving, [], 2.0, "special")), special, atol=TOL)
    N = 37 + 70
    regular = sum(n / N * flat(d) for d, n in remaining) - 20.0 * sum(n / N * flat(d) for d, n in leaving)
    np.testing.assert_allclose(flat(puf_step(leaving, remaining, 20.0, "regular")), regular, atol=TOL)


def test_puf_trains_the_leaving_clients_as_training_did_then_recovers(tmp_path: Path) -> None:
    h = random_history(tmp_path, rounds=4, clients=5, seed=21)
    trainer = ScriptedTrainer(6, seed=21)
    ctx = context(h, [0, 2], trainer, "unlearning.methods=[puf]", "unlearning.puf.recovery.stop=rounds",
                  "unlearning.puf.recovery.max_rounds=2")  # fmt: skip
    out = unlearning.create("puf", ctx.cfg).unlearn(ctx)
    group, _, asked, plan = trainer.calls[0]
    assert asked == [0, 2] and plan.epochs == ctx.cfg.fl.local_epochs and group == "puf-unlearn-5"
    # the scripted clients' Δ is their direction; both hold 10 samples in the scripted replies
    expected = flat(ctx.trained) - 2.0 * (flat(trainer.directions[0]) + flat(trainer.directions[2])) / 2
    assert out.rounds[0].clients == [0, 2]
    np.testing.assert_allclose(flat(trainer.calls[1][1]), expected, atol=1e-5)  # recovery starts from the PUF step
    assert [c[2] for c in trainer.calls[1:]] == [[1, 3, 4, 5], [1, 3, 4, 5]] and out.stop is not None


# -- NoT ----------------------------------------------------------------------------------------------


def test_not_negates_the_first_weight_tensor_only() -> None:
    params = {"0.weight": np.ones((2, 3), np.float32), "0.bias": np.ones(2, np.float32),
              "2.weight": np.ones((4, 2), np.float32), "2.bias": np.ones(4, np.float32)}  # fmt: skip
    negated, names = negate_first_layers(params, 1)
    assert names == ["0.weight"]
    np.testing.assert_array_equal(negated["0.weight"], -params["0.weight"])
    for k in ("0.bias", "2.weight", "2.bias"):
        np.testing.assert_array_equal(negated[k], params[k])
    assert negate_first_layers(params, 2)[1] == ["0.weight", "2.weight"]


# -- FedQUIT ------------------------------------------------------------------------------------------


def test_fedquit_loss_is_kl_to_the_virtual_teacher() -> None:
    """fedquit_training.py: z_v = z_g with z_v[y] = min(z_g); KL(softmax(z_v/τ) ‖ softmax(z_s/τ)), batch mean."""
    rng = np.random.default_rng(22)
    zg, zs, y = rng.normal(size=(6, 5)) * 3, rng.normal(size=(6, 5)), rng.integers(0, 5, 6)
    for tau in (1.0, 2.0):
        zv = zg.copy()
        zv[np.arange(6), y] = zg.min(axis=1)
        p = np.exp(zv / tau) / np.exp(zv / tau).sum(1, keepdims=True)
        q = np.exp(zs / tau) / np.exp(zs / tau).sum(1, keepdims=True)
        oracle = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
        got = fedquit_loss(torch.tensor(zs), torch.tensor(zg), torch.tensor(y), tau)
        assert float(got) == pytest.approx(oracle, abs=TOL)


# -- Crab ---------------------------------------------------------------------------------------------


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_crab_selection_scores_are_the_codes() -> None:
    """select_round: Σ_tensors F.kl_div(log_softmax(now), softmax(prior), 'sum') = KL(prior ‖ now), last axis;
    select_client_in_round: mean over weight tensors of mean row-wise cosine similarity to the aggregate."""
    rng = np.random.default_rng(23)
    a, b = _rand(rng), _rand(rng)
    oracle = sum(float(np.sum(_softmax(a[k]) * (np.log(_softmax(a[k])) - np.log(_softmax(b[k]))))) for k in SHAPES)
    assert parameter_kl(a, b) == pytest.approx(oracle, abs=TOL)
    cos = []
    for k in ("layer1.weight", "layer2.weight"):
        rows = np.sum(a[k] * b[k], 1) / (np.linalg.norm(a[k], axis=1) * np.linalg.norm(b[k], axis=1))
        cos.append(rows.mean())
    assert similarity(a, b) == pytest.approx(np.mean(cos), abs=TOL)


def test_crab_windows_rounds_and_clients() -> None:
    """train_with_select on 7 iterations: a window closes when the loss drops below 0.9 × its start or at the end."""
    rng = np.random.default_rng(24)
    models = [_rand(rng) for _ in range(8)]
    locals_of = [{c: _rand(rng) for c in range(4)} for _ in range(7)]
    losses = [2.0, 1.95, 1.7, 1.6, 1.55, 1.5, 1.49]  # closes at i = 2 (1.7 < 1.8), i = 5 (1.5 < 1.53), i = 6 (end)
    kept = select(losses, models, locals_of, 0.1, 0.6, 0.7)
    oracle: dict[int, list[int]] = {}
    for start, end in ((0, 2), (2, 5), (5, 6)):
        window = models[start + 1 : end + 1]
        if len(window) < 2:
            rounds = [start]
        else:
            kl = [kl_oracle(window[j], window[j + 1]) for j in range(len(window) - 1)]
            rounds = [start + int(j) for j in np.argsort(kl)[::-1][: int(len(window) * 0.6)]]
        for r in rounds:
            scores = [cosine_oracle(models[r + 1], locals_of[r][c]) for c in range(4)]
            oracle[r] = [int(c) for c in np.argsort(scores)[::-1][:2]]
    assert kept == dict(sorted(oracle.items()))


# -- SIFU ---------------------------------------------------------------------------------------------


def test_sifu_bound_and_sensitivity() -> None:
    """privacy.py: Ψ* = εσ/√(2 ln(1.25/δ)), δ = 1/M; server.py: Ψ += p/(1 − p)·‖θ^{t+1} − θ_c^{t+1}‖ when c trains."""
    assert psi_star(10.0, 0.05, 100) == pytest.approx(10 * 0.05 / math.sqrt(2 * math.log(1.25 / 0.01)))
    rng = np.random.default_rng(25)
    steps, oracle = [], np.zeros((5, 2))
    for t in range(1, 5):
        start, agg = _rand(rng), _rand(rng)
        deltas = {c: _rand(rng) for c in (0, 1) if rng.random() < 0.7 or t == 1}
        weights = {c: float(rng.uniform(0.05, 0.5)) for c in deltas}
        steps.append((distances_to(agg, start, deltas), weights))
        oracle[t] = oracle[t - 1] + [
            w / (1 - w) * np.linalg.norm(flat(agg) - flat(start) - flat(deltas[c])) if c in deltas else 0.0
            for c, w in ((c, weights.get(c, 0.0)) for c in (0, 1))
        ]
    np.testing.assert_allclose(sensitivities(steps, [0, 1]), oracle, atol=TOL)


def test_sifu_restarts_from_the_last_admissible_model(tmp_path: Path) -> None:
    h = random_history(tmp_path, rounds=6, clients=5, seed=26)
    trainer = ScriptedTrainer(6, seed=26)
    ctx = context(h, [0], trainer, "unlearning.methods=[sifu]", "unlearning.sifu.sigma=1e-9",
                  "unlearning.sifu.epsilon=1e12", "unlearning.sifu.recovery.stop=rounds",
                  "unlearning.sifu.recovery.max_rounds=0")  # fmt: skip
    out = unlearning.create("sifu", ctx.cfg).unlearn(ctx)
    # Ψ* = εσ/c this large admits every model: the restart is the trained model (with noise of std 1e-9)
    np.testing.assert_allclose(flat(out.params), flat(ctx.trained), atol=TOL)
    ctx = context(h, [0], trainer, "unlearning.methods=[sifu]", "unlearning.sifu.sigma=0",
                  "unlearning.sifu.recovery.stop=rounds", "unlearning.sifu.recovery.max_rounds=0")  # fmt: skip
    out = unlearning.create("sifu", ctx.cfg).unlearn(ctx)  # Ψ* = 0 at σ = 0: only the initial model is admissible
    np.testing.assert_allclose(flat(out.params), flat(h.globals[1]), atol=TOL)
