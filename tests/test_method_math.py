"""Hand-checked math of FedRecover (L-BFGS), PGA (projection) and FedRecovery (residuals, noise)."""

import math

import numpy as np

from fedunlearn.unlearning.lbfgs import bfgs_matrix, lbfgs_hvp
from fedunlearn.unlearning.methods.pga import project_to_ball
from fedunlearn.unlearning.residual import gaussian_sigma, round_residual, round_weights


def test_lbfgs_product_matches_explicit_bfgs_matrix() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 5))
    H = A @ A.T + 5 * np.eye(5)  # SPD Hessian of the quadratic ½xᵀHx
    S = rng.normal(size=(5, 3))
    Y = H @ S  # gradient differences of the quadratic
    v = rng.normal(size=5)
    np.testing.assert_allclose(lbfgs_hvp(S, Y, v), bfgs_matrix(S, Y) @ v, rtol=1e-8, atol=1e-8)
    # secant condition on the newest pair: H̃ s_last = y_last
    np.testing.assert_allclose(lbfgs_hvp(S, Y, S[:, -1]), Y[:, -1], rtol=1e-8)


def test_lbfgs_recovers_the_hessian_of_a_quadratic() -> None:
    H = np.diag([2.0, 5.0])
    S = np.eye(2)  # steps along the eigenvectors (conjugate directions)
    Y = H @ S
    for v in (np.array([1.0, 0.0]), np.array([0.3, -2.0])):
        np.testing.assert_allclose(lbfgs_hvp(S, Y, v), H @ v, rtol=1e-10)
    # isotropic quadratic: one pair suffices
    s = np.array([[1.0], [2.0], [3.0]])
    np.testing.assert_allclose(lbfgs_hvp(s, 4.0 * s, np.array([1.0, -1.0, 0.5])), [4.0, -4.0, 2.0])
    assert not lbfgs_hvp(np.zeros((3, 0)), np.zeros((3, 0)), np.ones(3)).any()


def test_projection_onto_the_ball() -> None:
    center = np.array([1.0, 1.0])
    np.testing.assert_allclose(project_to_ball(np.array([1.0, 4.0]), center, 1.5), [1.0, 2.5])
    inside = np.array([1.5, 1.0])
    np.testing.assert_array_equal(project_to_ball(inside, center, 1.0), inside)
    far = project_to_ball(np.array([4.0, 5.0]), center, 2.0)  # direction (3, 4)/5
    np.testing.assert_allclose(far, [1.0 + 1.2, 1.0 + 1.6])


def test_fedrecovery_residual_weights_and_sigma() -> None:
    updates = [np.array([4.0, 0.0]), np.array([0.0, 2.0]), np.array([2.0, 2.0])]
    weights = [0.5, 0.25, 0.25]
    # full = [2, 0] + [0, .5] + [.5, .5] = [2.5, 1]; without client 0: p' = (.5, .5) → [1, 2]
    np.testing.assert_allclose(round_residual(updates, weights, [True, False, False]), [1.5, -1.0])
    np.testing.assert_allclose(round_residual(updates, weights, [False, False, False]), [0.0, 0.0])
    np.testing.assert_allclose(round_weights([np.array([1.0, 0.0]), np.array([0.0, 3.0])]), [0.1, 0.9])
    assert gaussian_sigma(2.0, 1.0, 1.25 / math.e) == 2.0 * math.sqrt(2.0)
