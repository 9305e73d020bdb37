"""The paths through each method that a fixed-direction trainer cannot see: which model every step starts from,
chained recoveries, stop and restart rules, abnormality fixing, the server's own training loops — each against a
numpy oracle written from the papers and the authors' code, on random histories with unequal client weights and
partial participation. ``LinearTrainer``'s replies depend on the model a client is sent, so a method that starts a
step from the wrong model gives another result."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedunlearn import unlearning
from fedunlearn.core.federation import CostMeter
from fedunlearn.core.params import get_params
from fedunlearn.unlearning import UnlearningContext
from tests.reference.conftest import (
    SHAPES,
    LinearTrainer,
    context,
    cosine_oracle,
    flat,
    kl_oracle,
    random_history,
    unflat,
)

ATOL = 1e-5


def _fedavg(trainer: LinearTrainer, model: np.ndarray, cids: list[int], epochs: float) -> np.ndarray:
    """One FedAvg round of LinearTrainer clients from ``model``: the sample-weighted mean of their models."""
    n = np.array([trainer.counts[c] for c in cids], float)
    return model + sum(w * trainer.update(c, unflat(model), epochs) for w, c in zip(n / n.sum(), cids, strict=True))


# -- FedEraser: calibration starts from the unlearned model ----------------------------------------------------------


def _federaser_oracle(h: Any, trainer: LinearTrainer, forget: list[int], interval: int, ratio: float, epochs: int,
                      granularity: str) -> np.ndarray:  # fmt: skip
    schedule = [t for t in sorted(h.globals) if (t - 1) % interval == 0]
    model = flat(h.globals[schedule[0]])
    offsets = np.cumsum([0] + [int(np.prod(SHAPES[k])) for k in sorted(SHAPES)])
    for j, t in enumerate(schedule):
        keep = [c for c in h.participants[t] if c not in forget]
        if not keep:
            continue
        n = np.array([h.counts[c] for c in keep], float)
        p = n / n.sum() if granularity == "client" else np.full(len(keep), 1 / len(keep))  # the code: equal
        old = [flat(h.updates[t][c]) for c in keep]
        if j == 0:
            model = model + sum(pk * u for pk, u in zip(p, old, strict=True))
            continue
        new = [trainer.update(c, unflat(model), ratio * epochs) for c in keep]  # from M̃^{t_j}, not from M^{t_j}
        if granularity == "client":
            model = model + sum(
                pk * np.linalg.norm(u) * v / np.linalg.norm(v) for pk, u, v in zip(p, old, new, strict=True)
            )
        else:  # the authors' unlearning_step_once: per tensor, equal client weights
            mean_old, mean_new = np.mean(old, axis=0), np.mean(new, axis=0)
            for a, b in itertools.pairwise(offsets):
                model[a:b] += np.linalg.norm(mean_old[a:b]) * mean_new[a:b] / np.linalg.norm(mean_new[a:b])
    return model


@pytest.mark.parametrize("granularity", ["client", "layer"])
def test_federaser_calibrates_from_the_unlearned_model(tmp_path: Path, granularity: str) -> None:
    h = random_history(tmp_path, rounds=9, clients=6, seed=40)
    trainer = LinearTrainer(h.counts, seed=40)
    ctx = context(h, [0, 4], trainer, "unlearning.methods=[federaser]", "fl.local_epochs=2",
                  f"unlearning.federaser.granularity={granularity}")  # fmt: skip
    out = unlearning.create("federaser", ctx.cfg).unlearn(ctx)
    oracle = _federaser_oracle(h, trainer, [0, 4], 2, 0.5, 2, granularity)
    np.testing.assert_allclose(flat(out.params), oracle, atol=ATOL)


# -- Crab: the selection, and the chained recovery -----------------------------------------------------------------


def _crab_selection(h: Any, trained: dict[str, np.ndarray], forget: list[int]) -> dict[int, list[int]]:
    """train_with_select over the history: windows closing at a 10% loss drop or the last round, the top 60% rounds
    by KL between consecutive global models (the change j+1 → j+2 attributed to j, as the code does), the top 70%
    clients by cosine similarity to the round's aggregate. Keys: round numbers."""
    rounds = sorted(h.globals)
    models = [h.globals[t] for t in rounds] + [trained]
    losses = []
    for t in rounds:
        keep = [c for c in h.participants[t] if c not in forget]
        n = np.array([h.counts[c] for c in keep], float)
        losses.append(float(np.dot([h.losses[t][c] for c in keep], n) / n.sum()))
    kept: dict[int, list[int]] = {}
    window: list[dict[str, np.ndarray]] = []
    start, start_loss = 0, losses[0]
    for i in range(len(rounds)):
        if i > 0:
            window.append(models[i])
        if losses[i] < 0.9 * start_loss or i == len(rounds) - 1:
            if len(window) < 2:
                chosen = [start]
            else:
                kl = [kl_oracle(window[j], window[j + 1]) for j in range(len(window) - 1)]
                chosen = [start + int(j) for j in np.argsort(kl)[::-1][: int(len(window) * 0.6)]]
            for r in chosen:
                clients = sorted(h.participants[rounds[r]])
                aggregate = models[r + 1]
                scores = [
                    cosine_oracle(aggregate, {k: h.globals[rounds[r]][k] + h.updates[rounds[r]][c][k] for k in SHAPES})
                    for c in clients
                ]
                kept[rounds[r]] = [clients[int(j)] for j in np.argsort(scores)[::-1][: int(len(clients) * 0.7)]]
            window, start, start_loss = [], i, losses[i]
    return dict(sorted(kept.items()))


def _crab_recovery(h: Any, trainer: LinearTrainer, kept: dict[int, list[int]], forget: list[int]) -> np.ndarray:
    """adaptive_recover, chained: from the model of the first round a forgotten client took part in, each kept round
    t: one epoch from the current model (FedAvg → newGM), one more from newGM (newCM), newGM calibrated per tensor
    with the stored magnitude ‖mean_k U_k^t‖ (equal weights); the next step starts from the calibrated newGM."""
    first = min(t for t in h.participants if set(forget) & set(h.participants[t]))
    model = flat(h.globals[first])
    offsets = np.cumsum([0] + [int(np.prod(SHAPES[k])) for k in sorted(SHAPES)])
    for t, cids in kept.items():
        cids = [c for c in cids if c not in forget]
        if t < first or not cids:
            continue
        new_gm = _fedavg(trainer, model, cids, 1.0)
        mean_old = np.mean([flat(h.updates[t][c]) for c in cids], axis=0)
        mean_new = np.mean([trainer.update(c, unflat(new_gm), 1.0) for c in cids], axis=0)
        for a, b in itertools.pairwise(offsets):
            new_gm[a:b] += np.linalg.norm(mean_old[a:b]) * mean_new[a:b] / np.linalg.norm(mean_new[a:b])
        model = new_gm
    return model


@pytest.mark.parametrize(("seed", "forget"), [(41, [0]), (42, [0, 3]), (50, None)])
def test_crab_selects_and_recovers_chained_from_the_rollback_model(
    tmp_path: Path, seed: int, forget: list[int] | None
) -> None:
    h = random_history(tmp_path, rounds=10, clients=6, seed=seed, losses=True, participation=0.6)
    if forget is None:  # a client that joins after round 1: the recovery starts from its first round's model
        forget = [next(c for c in range(6) if c not in h.participants[1] and c in h.participants[2])]
    trainer = LinearTrainer(h.counts, seed=seed)
    ctx = context(h, forget, trainer, "unlearning.methods=[crab]")
    out = unlearning.create("crab", ctx.cfg).unlearn(ctx)
    kept = _crab_selection(h, ctx.trained, forget)
    replayed = [t for t, cids in kept.items() if t >= out.info["rollback_round"] and set(cids) - set(forget)]
    assert out.info["losses"] == "recorded" and out.info["replayed_rounds"] == replayed and len(replayed) >= 3
    np.testing.assert_allclose(flat(out.params), _crab_recovery(h, trainer, kept, forget), atol=ATOL)


# -- SIFU: the restart round ----------------------------------------------------------------------------------------


def _psi(h: Any, trained: dict[str, np.ndarray], clients: list[int]) -> np.ndarray:
    """Ψ after each aggregation (row 0: none), per client: += p/(1 − p) ‖θ^{t+1} − θ_c^{t+1}‖ in each round c takes
    part in, p its sample weight among the round's participants (psi_weight: round)."""
    rounds = sorted(h.globals)
    psi = np.zeros((len(rounds) + 1, len(clients)))
    for i, t in enumerate(rounds, start=1):
        psi[i] = psi[i - 1]
        new = flat(h.globals[rounds[i]]) if i < len(rounds) else flat(trained)
        total = sum(h.counts[c] for c in h.participants[t])
        for j, c in enumerate(clients):
            if c in h.participants[t]:
                p = h.counts[c] / total
                local = flat(h.globals[t]) + flat(h.updates[t][c])
                if p == 1:  # alone: without it the round has no aggregate and the model stays where it was
                    psi[i, j] += np.linalg.norm(new - flat(h.globals[t]))
                else:
                    psi[i, j] += p / (1 - p) * np.linalg.norm(new - local)
    return psi


@pytest.mark.parametrize(("forget", "quantile"), [([0], 0.5), ([0, 2], 0.4), ([0, 2], 0.8)])
def test_sifu_restarts_from_the_last_model_within_the_bound(tmp_path: Path, forget: list[int], quantile: float) -> None:
    h = random_history(tmp_path, rounds=8, clients=5, seed=43)
    trainer = LinearTrainer(h.counts, seed=43)
    probe = context(h, forget, trainer, "unlearning.methods=[sifu]")
    psi = _psi(h, probe.trained, forget).max(axis=1)
    bound = float(np.quantile(psi[np.isfinite(psi)], quantile))  # Ψ* inside the path: neither end admits all
    sigma = 1e-7
    epsilon = bound * math.sqrt(2 * math.log(1.25 * 6)) / sigma  # Ψ* = εσ/√(2 ln(1.25/δ)), δ = 1/M, M = 6
    ctx = context(h, forget, trainer, "unlearning.methods=[sifu]", f"unlearning.sifu.sigma={sigma}",
                  f"unlearning.sifu.epsilon={epsilon}", "unlearning.sifu.recovery.stop=rounds",
                  "unlearning.sifu.recovery.max_rounds=0")  # fmt: skip
    out = unlearning.create("sifu", ctx.cfg).unlearn(ctx)
    admissible = int(np.nonzero(psi <= bound * (1 + 1e-9))[0].max())
    assert 0 < admissible < len(psi) - 1
    restart = flat(h.globals[sorted(h.globals)[admissible]])
    assert out.info["rollback_aggregations"] == admissible
    np.testing.assert_allclose(flat(out.params), restart, atol=1e-5)


def test_sifu_adds_noise_of_std_sigma_to_every_parameter(tmp_path: Path) -> None:
    """N(0, σ²) on every parameter of the restart model (privacy.py), drawn from the run's noise stream in name
    order (the stream is fedunlearn's seeding, not its math)."""
    from fedunlearn.seeds import rng
    from fedunlearn.unlearning.methods.sifu import NOISE

    h = random_history(tmp_path, rounds=4, clients=5, seed=48)
    ctx = context(h, [0], LinearTrainer(h.counts, seed=48), "unlearning.methods=[sifu]", "unlearning.sifu.sigma=0.3",
                  "unlearning.sifu.epsilon=1e12", "unlearning.sifu.recovery.stop=rounds",
                  "unlearning.sifu.recovery.max_rounds=0")  # fmt: skip
    out = unlearning.create("sifu", ctx.cfg).unlearn(ctx)
    draw = rng(ctx.cfg.seed, NOISE)
    noise = {k: draw.normal(0.0, 0.3, SHAPES[k]) for k in sorted(SHAPES)}
    np.testing.assert_allclose(flat(out.params) - flat(ctx.trained), flat(noise), atol=1e-5)


def test_sifu_with_a_forgotten_client_alone_in_a_round(tmp_path: Path) -> None:
    """p = 1 (no division by zero): without the client that round has no aggregate and the model would not have
    moved, so the client's sensitivity grows by the round's whole move ‖θ^{t+1} − θ^t‖."""
    h = random_history(tmp_path, rounds=5, clients=4, seed=44, participation=1.0)
    h.participants[3] = [0]
    h.updates[3] = {0: h.updates[3][0]}
    h.store.truncate(0)
    for t in sorted(h.globals):
        h.store.record_round(t, h.globals[t], h.updates[t], {c: h.counts[c] for c in h.participants[t]})
    trainer = LinearTrainer(h.counts, seed=44)
    probe = context(h, [0], trainer, "unlearning.methods=[sifu]")
    psi = _psi(h, probe.trained, [0])[:, 0]
    assert psi[3] - psi[2] == pytest.approx(float(np.linalg.norm(flat(h.globals[4]) - flat(h.globals[3]))))
    bound, sigma = float((psi[2] + psi[3]) / 2), 1e-7  # between before and after the lone round
    epsilon = bound * math.sqrt(2 * math.log(1.25 * 6)) / sigma
    ctx = context(h, [0], trainer, "unlearning.methods=[sifu]", f"unlearning.sifu.epsilon={epsilon}",
                  f"unlearning.sifu.sigma={sigma}", "unlearning.sifu.recovery.stop=rounds",
                  "unlearning.sifu.recovery.max_rounds=0")  # fmt: skip
    out = unlearning.create("sifu", ctx.cfg).unlearn(ctx)
    assert out.info["rollback_aggregations"] == 2  # the model round 3 started from
    np.testing.assert_allclose(flat(out.params), flat(h.globals[3]), atol=1e-5)


# -- NoT, FedQUIT, kd_recover: their own steps, then recovery rounds on the history ----------------------------------


def _recovery_oracle(trainer: LinearTrainer, model: np.ndarray, remaining: list[int], rounds: int) -> np.ndarray:
    for _ in range(rounds):
        model = _fedavg(trainer, model, remaining, 1.0)
    return model


def test_not_negates_then_recovers_with_the_remaining_clients(tmp_path: Path) -> None:
    h = random_history(tmp_path, rounds=4, clients=6, seed=45)
    trainer = LinearTrainer(h.counts, seed=45)
    ctx = context(h, [1, 4], trainer, "unlearning.methods=[fednot]", "fl.local_epochs=1",
                  "unlearning.fednot.recovery.stop=rounds", "unlearning.fednot.recovery.max_rounds=3")  # fmt: skip
    ctx.model = lambda: _ModelStub(SHAPES)  # type: ignore[method-assign]  # the random history's architecture
    out = unlearning.create("fednot", ctx.cfg).unlearn(ctx)
    start = {k: (-v if k == "layer1.weight" else v) for k, v in ctx.trained.items()}
    oracle = _recovery_oracle(trainer, flat(start), [0, 2, 3, 5], 3)
    np.testing.assert_allclose(flat(out.params), oracle, atol=ATOL)
    assert [c[2] for c in trainer.calls] == [[0, 2, 3, 5]] * 3


class _ModelStub:
    """A 'model' whose state_dict lists the history's arrays in their architecture order."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self.shapes = shapes

    def state_dict(self) -> dict[str, None]:
        return dict.fromkeys(self.shapes)


# numpy MLP (Flatten → Linear → ReLU → Linear), torch's layout: weight (out, in); names as nn.Sequential gives them


def _mlp_forward(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = x @ p["1.weight"].T + p["1.bias"]
    h = np.maximum(a, 0.0)
    return a, h, h @ p["3.weight"].T + p["3.bias"]


def _mlp_grads(p: dict[str, np.ndarray], x: np.ndarray, dz: np.ndarray) -> dict[str, np.ndarray]:
    a, h, _ = _mlp_forward(p, x)
    dh = dz @ p["3.weight"]
    da = dh * (a > 0)
    return {"3.weight": dz.T @ h, "3.bias": dz.sum(0), "1.weight": da.T @ x, "1.bias": da.sum(0)}


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _mlp_context(tmp_path: Path, forget: list[int], trainer: Any, *overrides: str) -> UnlearningContext:
    """A context whose trained model is a real mlp (hidden 8) on the synthetic data, with a history recorded by that
    model's shapes (kd subtracts it)."""
    from fedunlearn.data import federated_data
    from fedunlearn.history import HistoryStore
    from fedunlearn.models import build_model
    from tests.conftest import make_config

    cfg = make_config("dataset=synthetic", "dataset.num_samples=400", "dataset.server_samples=20", "fl.num_clients=6",
                      "model.hidden=8", f"forget.clients={forget}", "backdoor.clients=[]", *overrides)  # fmt: skip
    data = federated_data(cfg)
    rng = np.random.default_rng(46)
    fresh = get_params(build_model(cfg.model, data.input_shape, data.num_classes, 46))
    trained = {k: (v + 0.3 * rng.normal(size=v.shape)).astype(np.float32) for k, v in fresh.items()}
    store = HistoryStore(tmp_path / "h")
    counts = {c: int(rng.integers(5, 60)) for c in range(6)}
    for t in (1, 2, 3):
        cids = sorted({0, *[c for c in range(1, 6) if rng.random() < 0.7]})
        store.record_round(t, {k: v * 0.9 for k, v in trained.items()},
                           {c: {k: (0.05 * rng.normal(size=v.shape)).astype(np.float32) for k, v in trained.items()}
                            for c in cids}, {c: counts[c] for c in cids})  # fmt: skip
    return UnlearningContext(cfg, store, forget, CostMeter(trainer), trained, lambda p: (0.0, 0.0), data)


@pytest.mark.parametrize("forget", [[0], [0, 2]])
def test_fedquit_distils_with_adam_from_the_virtual_teacher(tmp_path: Path, forget: list[int]) -> None:
    """fedquit_training.py: student = the global model, teacher frozen; per sample the teacher's true-class logit
    becomes its smallest; KL(softmax(z_v/τ) ‖ softmax(z_s/τ)), batch mean; Adam; several clients' students averaged
    by samples. Full batches, so that the order of samples does not matter."""
    ctx = _mlp_context(tmp_path, forget, None, "unlearning.methods=[fedquit]", "unlearning.fedquit.epochs=3",
                       "unlearning.fedquit.batch_size=1000", "unlearning.fedquit.lr=0.01",
                       "unlearning.fedquit.temperature=2.0", "unlearning.fedquit.recovery.stop=rounds",
                       "unlearning.fedquit.recovery.max_rounds=0")  # fmt: skip
    out = unlearning.create("fedquit", ctx.cfg).unlearn(ctx)
    tau, lr = 2.0, 0.01
    teacher = {k: v.astype(np.float64) for k, v in ctx.trained.items()}
    students, sizes = [], []
    for c in forget:
        own = ctx.data.client(c)
        x, y = own.x.reshape(len(own.y), -1).astype(np.float64), own.y
        zt = _mlp_forward(teacher, x)[2]
        zv = zt.copy()
        zv[np.arange(len(y)), y] = zt.min(axis=1)
        target = _softmax_rows(zv / tau)
        p = {k: v.copy() for k, v in teacher.items()}
        m = {k: np.zeros_like(v) for k, v in p.items()}
        v2 = {k: np.zeros_like(v) for k, v in p.items()}
        for step in range(1, 4):  # Adam (β 0.9, 0.999, ε 1e-8), bias-corrected
            q = _softmax_rows(_mlp_forward(p, x)[2] / tau)
            grads = _mlp_grads(p, x, (q - target) / (tau * len(y)))
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v2[k] = 0.999 * v2[k] + 0.001 * grads[k] ** 2
                p[k] -= lr * (m[k] / (1 - 0.9**step)) / (np.sqrt(v2[k] / (1 - 0.999**step)) + 1e-8)
        students.append(flat(p))
        sizes.append(len(y))
    n = np.array(sizes, float)
    oracle = sum(w * s for w, s in zip(n / n.sum(), students, strict=True))
    np.testing.assert_allclose(flat(out.params), oracle, atol=1e-4)


def test_kd_recover_subtracts_distils_with_clipped_momentum_then_recovers(tmp_path: Path) -> None:
    """FUKD's M' = M^E − Σ_t p_u^t U_u^t; distillation to the trained model's softened predictions on the server's
    samples, KL·T², SGD momentum 0.9, gradient norm clipped; then FedAvg rounds of the remaining clients."""
    ctx = _mlp_context(tmp_path, [0], None, "unlearning.methods=[kd_recover]", "fl.local_epochs=1",
                       "unlearning.kd_recover.distill.epochs=4", "unlearning.kd_recover.distill.batch_size=64",
                       "unlearning.kd_recover.distill.lr=0.05", "unlearning.kd_recover.distill.max_grad_norm=0.02",
                       "unlearning.kd_recover.recovery.stop=rounds", "unlearning.kd_recover.recovery.max_rounds=2",
                       "unlearning.kd_recover.recovery.max_share=1.0")  # fmt: skip
    h = ctx.history
    counts = {c: int(h.num_examples(t, c)) for t in h.rounds() for c in h.participants(t)}
    trainer = _MLPLinearTrainer({c: counts.get(c, 10 + c) for c in range(6)}, ctx.trained)
    ctx = dataclasses.replace(ctx, clients=CostMeter(trainer))
    out = unlearning.create("kd_recover", ctx.cfg).unlearn(ctx)
    p = {k: v.astype(np.float64) for k, v in ctx.trained.items()}
    for t in h.rounds():
        cids = h.participants(t)
        if 0 in cids:
            total = sum(h.num_examples(t, c) for c in cids)
            for k, u in h.client_update(t, 0).items():
                p[k] -= h.num_examples(t, 0) / total * u
    x = ctx.data.server.x.reshape(len(ctx.data.server.x), -1).astype(np.float64)
    temp = 2.0
    soft = _softmax_rows(_mlp_forward({k: v.astype(np.float64) for k, v in ctx.trained.items()}, x)[2] / temp)
    buf: dict[str, np.ndarray] = {}
    clipped = 0
    for _ in range(4):  # one full batch per epoch (20 server samples)
        q = _softmax_rows(_mlp_forward(p, x)[2] / temp)
        grads = _mlp_grads(p, x, temp**2 * (q - soft) / (temp * len(x)))
        norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
        scale = min(1.0, 0.02 / (norm + 1e-6))
        clipped += scale < 1.0
        for k in p:
            g = grads[k] * scale
            buf[k] = g if k not in buf else 0.9 * buf[k] + g
            p[k] -= 0.05 * buf[k]
    assert clipped == 4  # the clip is active at every step: its norm matters
    model = flat(p)
    for _ in range(2):
        model = _fedavg_mlp(trainer, model, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(flat(out.params), model, atol=1e-4)


class _MLPLinearTrainer(LinearTrainer):
    """LinearTrainer over the mlp's own arrays."""

    def __init__(self, counts: dict[int, int], like: dict[str, np.ndarray]) -> None:
        rng = np.random.default_rng(47)
        self.counts = counts
        self.targets = {c: {k: rng.normal(size=v.shape).astype(np.float32) for k, v in like.items()} for c in counts}
        self.drifts = {c: {k: (0.2 * rng.normal(size=v.shape)).astype(np.float32) for k, v in like.items()}
                       for c in counts}  # fmt: skip
        self.calls = []


def _fedavg_mlp(trainer: _MLPLinearTrainer, model: np.ndarray, cids: list[int]) -> np.ndarray:
    n = np.array([trainer.counts[c] for c in cids], float)
    step = np.zeros_like(model)
    for w, c in zip(n / n.sum(), cids, strict=True):
        step += w * (LinearTrainer.ETA * (flat(trainer.targets[c]) - model) + flat(trainer.drifts[c]))
    return model + step


# -- rollback and PGA's post-training ----------------------------------------------------------------------------


def test_rollback_restarts_from_the_round_the_forgotten_client_first_took_part_in(tmp_path: Path) -> None:
    """FATS-style rollback: M^{t0}, t0 the first round with the client, then every later round replayed with its
    remaining participants (training's schedule)."""
    h = random_history(tmp_path, rounds=7, clients=6, seed=52, participation=0.6)
    late = next(c for c in range(6) if c not in h.participants[1] and c in h.participants[2])
    trainer = LinearTrainer(h.counts, seed=52)
    ctx = context(h, [late], trainer, "unlearning.methods=[rollback]", "fl.local_epochs=1")
    out = unlearning.create("rollback", ctx.cfg).unlearn(ctx)
    model = flat(h.globals[2])
    for t in range(2, 8):
        keep = [c for c in h.participants[t] if c != late]
        model = _fedavg(trainer, model, keep, 1.0)
    assert out.info["rollback_round"] == 2
    np.testing.assert_allclose(flat(out.params), model, atol=ATOL)


def test_pgas_post_training_is_capped_as_the_code_caps_it(tmp_path: Path) -> None:
    h = random_history(tmp_path, rounds=3, clients=5, seed=51)
    trainer = LinearTrainer(h.counts, seed=51)
    ctx = _mlp_context(tmp_path, [0], trainer, "unlearning.methods=[pga]", "unlearning.pga.post_rounds=2",
                       "unlearning.pga.post_max_steps=51")  # fmt: skip
    trainer_mlp = _MLPLinearTrainer({c: 10 + c for c in range(6)}, ctx.trained)
    ctx = dataclasses.replace(ctx, clients=CostMeter(trainer_mlp))
    unlearning.create("pga", ctx.cfg).unlearn(ctx)
    assert [(group.split("-")[1], plan.max_steps) for group, _, _, plan in trainer_mlp.calls] == [("post", 51)] * 2
