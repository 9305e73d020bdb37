"""PGA against the authors' code (IBM/federated-unlearning @ 6f51bbc, federated_unlearning.ipynb cell 34) and the
paper's text (Halimi et al., 2022): the radius, the projection, the reference model, the stop rules, and a whole
ascent re-implemented in numpy (MLP forward/backward, gradient clipping, SGD with momentum, projection)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fedunlearn import unlearning
from fedunlearn.data import federated_data
from fedunlearn.models import build_model
from fedunlearn.seeds import torch_seed
from fedunlearn.unlearning.methods.pga import PGA_ASCENT, _project, pga_radius
from tests.conftest import TINY, make_config, run_in_process


def test_radius_is_the_root_of_a_third_of_the_mean_squared_distance() -> None:
    """Code: threshold = mean(get_distance(model_ref, FLNet()))/3 with get_distance = ‖·‖²; radius = sqrt(threshold)."""
    rng = np.random.default_rng(7)
    ref, randoms = rng.normal(size=50), rng.normal(size=(10, 50)) * 3
    squared = ((randoms - ref) ** 2).sum(axis=1)
    assert pga_radius(squared, 1 / 3) == pytest.approx(np.sqrt(np.mean(squared) / 3), abs=1e-12)
    assert pga_radius(squared, 1 / 3) != pytest.approx(np.mean(np.sqrt(squared)) / 3)  # not "a third of the distance"


def test_projection_is_the_codes() -> None:
    """Code: if ‖w − ref‖² > threshold: w ← ref + (w − ref)/‖w − ref‖ · sqrt(threshold)."""
    model = torch.nn.Linear(3, 2)
    rng = np.random.default_rng(8)
    center = rng.normal(size=8)
    for scale, threshold in ((5.0, 2.0), (0.01, 2.0)):
        w = center + rng.normal(size=8) * scale
        torch.nn.utils.vector_to_parameters(torch.tensor(w, dtype=torch.float32), model.parameters())
        _project(model, torch.tensor(center, dtype=torch.float32), float(np.sqrt(threshold)))
        d = w - center
        oracle = center + d / np.linalg.norm(d) * np.sqrt(threshold) if d @ d > threshold else w
        got = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
        np.testing.assert_allclose(got, oracle, atol=1e-6)


# -- a whole ascent ---------------------------------------------------------------------------------


def _mlp(vec: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    out, i = [], 0
    for s in shapes:
        out.append(vec[i : i + int(np.prod(s))].reshape(s))
        i += int(np.prod(s))
    return out


def _ascent_gradient(w1, b1, w2, b2, x, y):  # type: ignore[no-untyped-def]
    """Gradient of −CE(mean over the batch) for Flatten → Linear → ReLU → Linear."""
    x = x.reshape(len(x), -1)
    z1 = x @ w1.T + b1
    a = np.maximum(z1, 0)
    z2 = a @ w2.T + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(z2.shape[1])[y]
    dz2 = -(p - onehot) / len(x)  # d(−CE)/dz2
    dw2, db2 = dz2.T @ a, dz2.sum(0)
    dz1 = (dz2 @ w2) * (z1 > 0)
    return [dz1.T @ x, dz1.sum(0), dw2, db2]


def _oracle_ascent(start, center, target, radius, x, y, orders, p, shapes):  # type: ignore[no-untyped-def]
    """The notebook's loop: SGD(lr, momentum) on −CE, clip_grad_norm_, project, stop when ‖w − w_u‖² > 2.2."""
    w, buf, steps = start.copy(), None, 0
    for order in orders:
        for i in range(0, len(y), p.batch_size):
            idx = order[i : i + p.batch_size]
            g = np.concatenate([a.ravel() for a in _ascent_gradient(*_mlp(w, shapes), x[idx], y[idx])])
            norm = np.linalg.norm(g)
            g = g * min(1.0, p.clip / (norm + 1e-6))
            buf = g if buf is None else p.momentum * buf + g
            w = w - p.lr * buf
            d = w - center
            if np.linalg.norm(d) > radius:
                w = center + d / np.linalg.norm(d) * radius
            steps += 1
            if (w - target) @ (w - target) > p.distance_threshold:
                return w, steps, "distance"
    return w, steps, "epochs"


@pytest.mark.parametrize("threshold", [2.2, 1e9])
def test_a_whole_ascent_matches_the_authors_loop(tmp_path: Path, threshold: float) -> None:
    overrides = (*TINY, "fl.num_rounds=3", "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[pga]",
                 "unlearning.pga.post_rounds=0", "unlearning.pga.batch_size=32",
                 f"unlearning.pga.distance_threshold={threshold}")  # fmt: skip
    cfg = make_config(*overrides)
    res = run_in_process(cfg, tmp_path)["unlearning"]["pga"]
    from fedunlearn.experiment.checkpoint import load_params
    from fedunlearn.history import HistoryStore

    got = load_params(tmp_path / "models" / "pga.safetensors")
    store, data = HistoryStore.open(tmp_path / "history"), federated_data(cfg)
    keys = ["1.weight", "1.bias", "3.weight", "3.bias"]  # parameters() order of the mlp
    shapes = [got[k].shape for k in keys]

    def vec(params):  # type: ignore[no-untyped-def]
        return np.concatenate([np.asarray(params[k], np.float64).ravel() for k in keys])

    last = max(t for t in store.rounds() if 1 in store.participants(t))
    m = vec(store.global_model(last))
    locals_ = {c: m + vec(store.client_update(last, c)) for c in store.participants(last)}
    center = np.mean([w for c, w in locals_.items() if c != 1], axis=0)  # (1/(N−1)) Σ_{j≠u} w_j, equal weights
    target = locals_[1]
    p = cfg.unlearning.pga
    randoms = [vec({k: v.detach().numpy() for k, v in build_model(cfg.model, data.input_shape, data.num_classes, s)
                    .state_dict().items()}) for s in range(cfg.seed + 1, cfg.seed + 1 + p.random_models)]  # fmt: skip
    radius = np.sqrt(np.mean([((r - center) ** 2).sum() for r in randoms]) / 3)
    forgotten = data.clients([1])
    gen = torch.Generator().manual_seed(torch_seed(cfg.seed, PGA_ASCENT))
    orders = [torch.randperm(len(forgotten.y), generator=gen).numpy() for _ in range(p.epochs)]
    w, steps, rule = _oracle_ascent(center, center, target, radius, forgotten.x.astype(np.float64), forgotten.y,
                                    orders, p, shapes)  # fmt: skip
    assert res["info"]["radius"] == pytest.approx(radius, rel=1e-5)
    assert (res["stop"]["rule"], res["stop"]["after"]) == (rule, steps)
    np.testing.assert_allclose(vec(got), w, atol=1e-5)  # float32 torch against float64 numpy, over every step


def test_the_papers_accuracy_stop_is_a_named_option(tmp_path: Path) -> None:
    cfg = make_config(*TINY, "forget.clients=[1]", "unlearning.methods=[pga]", "unlearning.pga.stop=accuracy",
                      "unlearning.pga.stop_accuracy=1.01")  # fmt: skip
    ctx_stop = run_in_process(cfg, tmp_path)["unlearning"]["pga"]["stop"]
    assert ctx_stop == {"rule": "accuracy", "after": 1}
    assert unlearning.create("pga", cfg).hparams.stop == "accuracy"
