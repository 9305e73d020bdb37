import math

import numpy as np

from fedunlearn.evaluation import metrics as m


def test_accuracy_and_loss() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    assert m.accuracy(logits, np.array([0, 1, 1])) == 2 / 3
    assert m.accuracy(np.zeros((0, 2)), np.zeros(0, np.int64)) is None
    loss = m.per_sample_loss(np.array([[0.0, 0.0]]), np.array([1]))
    np.testing.assert_allclose(loss, [math.log(2)])


def test_auc_hand_computed() -> None:
    assert m.auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert m.auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert m.auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5  # ties count half
    # pos {1, 3}, neg {2}: one of two pairs ordered → 0.5
    assert m.auc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5
    assert m.auc(np.array([]), np.array([1.0])) is None


def test_mia_members_with_lower_loss_score_high() -> None:
    assert m.loss_threshold_mia_auc(np.array([0.1, 0.2]), np.array([1.0, 2.0])) == 1.0
    assert m.loss_threshold_mia_auc(np.array([1.0]), np.array([1.0])) == 0.5


def test_distances() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    assert m.l2_distance(a, b) == math.sqrt(5)
    assert abs(m.angle_degrees(a, b) - 90.0) < 1e-9
    assert m.angle_degrees(a, 3 * a) < 1e-6


def test_kl_and_js() -> None:
    x = np.array([[1.0, 2.0], [0.0, 0.0]])
    assert abs(m.kl_divergence(x, x)) < 1e-12
    assert abs(m.js_divergence(x, x)) < 1e-12
    # P = (1, 0)-ish vs Q uniform: KL(P‖Q) → ln 2, JS ≤ ln 2
    p, q = np.array([[50.0, 0.0]]), np.array([[0.0, 0.0]])
    assert abs(m.kl_divergence(p, q) - math.log(2)) < 1e-6
    js = m.js_divergence(p, q)
    assert 0 < js <= math.log(2)
    # hand value for P=(1,0), Q=(.5,.5): M=(.75,.25); JS = ½[ln(4/3)] + ½[.5 ln(2/3) + .5 ln 2]
    expected = 0.5 * math.log(4 / 3) + 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25))
    assert abs(js - expected) < 1e-6
