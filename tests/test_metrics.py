import math

import numpy as np
import pytest

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


def test_intervals_are_sample_t_intervals_computed_by_hand() -> None:
    from fedunlearn.reporting.stats import at_least, at_most, interval

    ci = interval([1.0, 2.0, 3.0])  # mean 2, sample std 1, t(0.975, 2) = 4.302652729911275
    assert ci is not None and ci.n == 3 and ci.mean == 2.0 and ci.std == 1.0
    assert ci.ci95 == pytest.approx(4.302652729911275 / 3**0.5)
    assert ci.text() == "2.000 ± 2.484 (n=3)"
    one = interval([0.5])
    assert one is not None and one.ci95 is None and one.text() == "0.500 (n=1)"
    assert interval([]) is None and interval([float("nan")]) is None
    assert at_most([0.1, 0.2, 0.3], 1.0) and not at_most([0.1, 0.2, 1.5], 1.0)  # 0.6 ± 1.74: the upper end decides
    assert not at_most([0.5], 1.0)  # one seed: no interval, no pass
    assert at_least([20.0, 21.0, 22.0], 10.0) and not at_least([5.0, 20.0, 40.0], 10.0)
    assert at_least([float("inf")] * 3, 10.0)
