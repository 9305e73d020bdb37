"""Calibrated membership inference with reference models: LiRA (Carlini, Chien, Nasr, Song, Terzis, Tramèr,
"Membership Inference Attacks From First Principles", IEEE S&P 2022), and the test of whether an unlearned model
tells its forgotten samples apart from a retrained model (after U-LiRA, Hayes, Shumailov, Triantafillou, Khalifa,
Papernot, "Inexact unlearning needs more careful evaluations to avoid a false sense of privacy", 2024).

For a sample (x, y) and a model f, LiRA's statistic is the logit-scaled confidence in the true class,
φ = log(p_y / (1 − p_y)) = z_y − log Σ_{j≠y} e^{z_j} (§IV-B: nearly Gaussian over models). Reference models trained
with the sample ("in") and without it ("out") give its Gaussians N(μ_in, σ²) and N(μ_out, σ²); with few references
the variance is one, pooled over samples and models (§VI-C, "fixed variance"). The online attack's score is the
log-likelihood ratio log N(φ; μ_in, σ²) − log N(φ; μ_out, σ²); the offline one (out models only) is
(φ − μ_out)/σ_out, the one-sided test of "not drawn from the out distribution". Members here are the forgotten
clients' clean samples; non-members as many held-out samples, which no model trained on.

Indistinguishability from retraining: retrained models are the "out" references of the forgotten samples. For a
method's model, z_i = (φ_i − μ_out,i)/σ_out over the forgotten samples and retrain_z their mean: 0 for a model that
forgets like retraining, > 0 for one that still holds them. The test's unit is the model, not the sample: one model's
z_i move together (a model more confident overall raises all of them), so a t-test over samples treats n correlated
values as independent and rejects exact retrains (measured: p = 0.006 for the run's own retrain, K = 4). Under "the
model is one more retrain", its mean φ over the forgotten samples, M, and the K out-references' M_1..M_K are i.i.d.;
with Gaussian M, (M − mean M_j) / (s_M √(1 + 1/K)) follows Student's t with K − 1 degrees of freedom (the prediction
interval of one new draw). Reported: retrain_z, the 95% prediction half-interval of a retrain's retrain_z, and the
two-sided p-value of that test (K ≥ 2; non-significant: indistinguishable at this power); the per-sample t-test's
values stay as retrain_z_ci95_samples and retrain_z_p_samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from fedunlearn.evaluation.metrics import auc

EPS = 1e-12
ATTACK_KEYS = ("lira_auc", "lira_tpr_1", "lira_tpr_01")
RETRAIN_KEYS = ("retrain_z", "retrain_z_ci95", "retrain_z_p", "retrain_z_ci95_samples", "retrain_z_p_samples")
KEYS = ATTACK_KEYS + RETRAIN_KEYS  # the metrics that need reference models


def scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """φ = z_y − log Σ_{j≠y} exp(z_j) per sample, computed stably (float64)."""
    z = logits.astype(np.float64)
    rows = np.arange(len(labels))
    true = z[rows, labels]
    others = z.copy()
    others[rows, labels] = -np.inf
    peak = others.max(axis=1)
    rest = peak + np.log(np.exp(others - peak[:, None]).sum(axis=1))
    return true - rest


@dataclass(frozen=True)
class Reference:
    """Per-sample Gaussians of φ from the reference models: ``mu_in``/``mu_out`` per sample (members then
    non-members), one pooled ``sigma_in``/``sigma_out`` each (fixed variance), ``members`` how many come first."""

    mu_in: np.ndarray
    mu_out: np.ndarray
    sigma_in: float
    sigma_out: float
    members: int
    out_model_means: np.ndarray | None = None  # M_j: each out-model's mean φ over the members (the test's null)

    @classmethod
    def fit(cls, phi_in: np.ndarray, phi_out: np.ndarray, members: int) -> Reference:
        """From φ of the in-models and the out-models (models × samples)."""

        def pooled(phi: np.ndarray) -> float:
            return float(np.sqrt(np.mean((phi - phi.mean(axis=0)) ** 2) * len(phi) / max(1, len(phi) - 1))) + EPS

        means = phi_out[:, :members].mean(axis=1) if members else None
        return cls(phi_in.mean(axis=0), phi_out.mean(axis=0), pooled(phi_in), pooled(phi_out), members, means)


def online_scores(phi: np.ndarray, ref: Reference) -> np.ndarray:
    """log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²) per sample (larger: more likely a member)."""
    return (scipy_stats.norm.logpdf(phi, ref.mu_in, ref.sigma_in)
            - scipy_stats.norm.logpdf(phi, ref.mu_out, ref.sigma_out))  # fmt: skip


def offline_scores(phi: np.ndarray, ref: Reference) -> np.ndarray:
    """(φ − μ_out)/σ_out per sample."""
    return (phi - ref.mu_out) / ref.sigma_out


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float) -> float | None:
    """The share of members scored above the threshold that at most ``fpr`` of the non-members exceed."""
    if len(members) == 0 or len(nonmembers) == 0:
        return None
    threshold = np.quantile(nonmembers, 1.0 - fpr, method="higher")
    return float(np.mean(members > threshold))


def attack(phi: np.ndarray, ref: Reference) -> dict[str, float | None]:
    """The online LiRA's AUC and TPR at 1% and 0.1% FPR, members (the first ``ref.members``) against
    non-members."""
    scores = online_scores(phi, ref)
    pos, neg = scores[: ref.members], scores[ref.members :]
    return {
        "lira_auc": auc(pos, neg),
        "lira_tpr_1": tpr_at_fpr(pos, neg, 0.01),
        "lira_tpr_01": tpr_at_fpr(pos, neg, 0.001),
    }


def retrain_likeness(phi_members: np.ndarray, ref: Reference) -> dict[str, float | None]:
    """retrain_z = mean (φ − μ_out)/σ_out over the forgotten samples; the model-level test of "one more retrain"
    (half-interval and p, from the out-models' mean φ; needs K ≥ 2) and the per-sample t-test's (``*_samples``)."""
    out: dict[str, float | None] = dict.fromkeys(RETRAIN_KEYS)
    z = (phi_members - ref.mu_out[: ref.members]) / ref.sigma_out
    if len(z) == 0:
        return out
    out["retrain_z"] = float(z.mean())
    if len(z) >= 2:
        out["retrain_z_ci95_samples"] = float(scipy_stats.t.ppf(0.975, len(z) - 1) * z.std(ddof=1) / np.sqrt(len(z)))
        out["retrain_z_p_samples"] = float(scipy_stats.ttest_1samp(z, 0.0).pvalue)
    means = ref.out_model_means
    if means is not None and len(means) >= 2:
        k = len(means)
        spread = float(means.std(ddof=1)) * np.sqrt(1.0 + 1.0 / k)
        diff = float(phi_members.mean() - means.mean())
        out["retrain_z_ci95"] = float(scipy_stats.t.ppf(0.975, k - 1) * spread / ref.sigma_out)
        if spread > 0:
            out["retrain_z_p"] = float(2 * scipy_stats.t.sf(abs(diff) / spread, k - 1))
        else:
            out["retrain_z_p"] = 1.0 if diff == 0 else 0.0
    return out
