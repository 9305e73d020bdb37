"""Calibrated membership inference (LiRA) and the retrain z: the statistics against numbers worked out by hand or
from their definitions in numpy, and reference federations trained once and reused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fedunlearn.evaluation import lira
from tests.conftest import TINY, make_config, run_in_process


def test_phi_is_the_logit_scaled_confidence_in_the_true_class() -> None:
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(6, 4)) * 3, rng.integers(0, 4, 6)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    py = p[np.arange(6), y]
    np.testing.assert_allclose(lira.scaled_confidence(z, y), np.log(py / (1 - py)), rtol=1e-10)
    big = np.array([[1000.0, 0.0, -5.0]])  # no overflow: φ = 1000 − log(e^0 + e^−5)
    assert lira.scaled_confidence(big, np.array([0]))[0] == pytest.approx(1000 - math.log(1 + math.exp(-5)))


def test_the_reference_gaussians_and_the_online_score() -> None:
    phi_in = np.array([[2.0, 0.0, 1.0], [4.0, 2.0, 1.0]])  # 2 models × 3 samples
    phi_out = np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0]])
    ref = lira.Reference.fit(phi_in, phi_out, members=2)
    np.testing.assert_allclose(ref.mu_in, [3.0, 1.0, 1.0])
    np.testing.assert_allclose(ref.mu_out, [1.0, 0.0, 1.0])
    # pooled variance: squared deviations from each sample's mean, over models and samples, × K/(K−1)
    assert ref.sigma_in == pytest.approx(math.sqrt((1 + 1 + 1 + 1 + 0 + 0) / 6 * 2), abs=1e-9)
    assert ref.sigma_out == pytest.approx(math.sqrt((1 + 1) / 6 * 2), abs=1e-9)
    phi = np.array([3.0, -1.0, 1.0])

    def logpdf(x: float, mu: float, s: float) -> float:
        return -0.5 * ((x - mu) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi))

    expected = [logpdf(f, a, ref.sigma_in) - logpdf(f, b, ref.sigma_out)
                for f, a, b in zip(phi, ref.mu_in, ref.mu_out, strict=True)]  # fmt: skip
    np.testing.assert_allclose(lira.online_scores(phi, ref), expected, rtol=1e-9)


def test_tpr_at_a_false_positive_rate() -> None:
    nonmembers = np.arange(100, dtype=float)  # the 1% threshold: the largest non-member, 99
    members = np.array([99.5, 120.0, 50.0, 98.0])
    assert lira.tpr_at_fpr(members, nonmembers, 0.01) == 0.5
    assert lira.tpr_at_fpr(members, nonmembers, 0.1) == 0.75  # above 90
    assert lira.tpr_at_fpr(np.array([]), nonmembers, 0.01) is None


def test_the_per_sample_t_test_is_kept_under_its_own_name() -> None:
    ref = lira.Reference(np.zeros(4), np.array([1.0, 1.0, 1.0, 1.0]), 1.0, 2.0, members=4)
    out = lira.retrain_likeness(np.array([3.0, 1.0, 5.0, 3.0]), ref)  # z = 1, 0, 2, 1: mean 1, sample std √(2/3)
    assert out["retrain_z"] == pytest.approx(1.0)
    sd = math.sqrt(2 / 3)
    assert out["retrain_z_ci95_samples"] == pytest.approx(3.182446305284263 * sd / 2)  # t(0.975, 3) · s / √n
    assert out["retrain_z_p_samples"] == pytest.approx(2 * stats.t.sf(1.0 / (sd / 2), 3))
    assert out["retrain_z_p"] is None and out["retrain_z_ci95"] is None  # no out-models given: no model-level test


def test_the_retrain_z_test_is_one_new_draw_against_the_out_models() -> None:
    # 3 out-models × 2 members (+1 non-member column); the tested model's φ on the members
    phi_out = np.array([[1.0, 3.0, 9.0], [2.0, 2.0, 9.0], [4.0, 4.0, 9.0]])
    phi_in = phi_out + 1.0
    ref = lira.Reference.fit(phi_in, phi_out, members=2)
    np.testing.assert_allclose(ref.out_model_means, [2.0, 2.0, 4.0])  # mean φ over the members, per out-model
    phi = np.array([6.0, 5.0])  # M = 5.5
    out = lira.retrain_likeness(phi, ref)
    # by hand: mean M_j = 8/3, s_M = √(((−2/3)² + (−2/3)² + (4/3)²)/2) = √(4/3), spread = s_M √(1 + 1/3) = 4/3
    spread = 4.0 / 3.0
    t = (5.5 - 8.0 / 3.0) / spread
    assert out["retrain_z_p"] == pytest.approx(2 * stats.t.sf(t, 2))
    assert out["retrain_z_ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * spread / ref.sigma_out)
    assert out["retrain_z"] == pytest.approx((5.5 - 8.0 / 3.0) / ref.sigma_out)  # the same difference, in σ_out


def test_the_model_level_test_holds_its_level_where_the_per_sample_test_does_not() -> None:
    """Null draws (each model = a shift shared by all its samples + per-sample noise; the tested model is one more
    such draw, K = 4): the model-level p-values are uniform (Kolmogorov–Smirnov; dropping the √(1 + 1/K) or using
    the normal quantile fails this at p < 1e-6), while the per-sample t-test, which treats one model's correlated
    samples as independent, rejects at 5% more than half the time."""
    rng = np.random.default_rng(0)
    n, k, trials = 50, 4, 3000
    mu = rng.normal(size=n)
    p_models, p_samples = [], []
    for _ in range(trials):
        phi = mu + rng.normal(0, 0.5, size=(k + 1, 1)) + rng.normal(0, 1.0, size=(k + 1, n))
        out = lira.retrain_likeness(phi[0], lira.Reference.fit(phi[1:] + 1, phi[1:], members=n))
        p_models.append(out["retrain_z_p"])
        p_samples.append(out["retrain_z_p_samples"])
    assert stats.kstest(p_models, "uniform").pvalue > 0.01
    assert np.mean(np.array(p_samples) < 0.05) > 0.5


def test_references_are_trained_once_and_measure_each_model(tmp_path: Path) -> None:
    overrides = (*TINY, "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,fedaccum]",
                 "evaluation.references=2")  # fmt: skip
    first = run_in_process(make_config(*overrides), tmp_path / "a")
    refs = first["references"]
    assert (refs["k"], refs["trained"], refs["cached"]) == (2, 4, 0) and len(set(refs["seeds"])) == 2
    assert refs["client_epochs"] == 2 * (4 * 4 * 2) + 2 * (4 * 3 * 2)  # in: 4 rounds × 4 clients × 2 epochs; out: 3
    for entry in (first["before_unlearning"], *first["unlearning"].values()):
        m = entry["metrics"]
        assert 0 <= m["lira_auc"] <= 1 and 0 <= m["lira_tpr_1"] <= 1 and math.isfinite(m["retrain_z"])
    again = run_in_process(make_config(*overrides), tmp_path / "b")  # another run of the same setting: the cache
    assert (again["references"]["trained"], again["references"]["cached"]) == (0, 4)
    assert (
        again["unlearning"]["retrain"]["metrics"]["lira_auc"] == first["unlearning"]["retrain"]["metrics"]["lira_auc"]
    )
    plain = run_in_process(make_config(*overrides[:-1]), tmp_path / "c")
    assert "references" not in plain and plain["unlearning"]["retrain"]["metrics"]["lira_auc"] is None
