"""Pure metric functions on logits, losses and parameter vectors."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float | None:
    """Share of argmax predictions equal to the label; None for an empty set."""
    if len(labels) == 0:
        return None
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def per_sample_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each sample."""
    if len(labels) == 0:
        return np.zeros(0)
    return -log_softmax(logits)[np.arange(len(labels)), labels]


def auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """P(score_pos > score_neg) + ½·P(tie): the ROC AUC by the Mann–Whitney U statistic."""
    if len(positive) == 0 or len(negative) == 0:
        return None
    scores = np.concatenate([positive, negative])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2.0
    return float(u / (len(positive) * len(negative)))


def loss_threshold_mia_auc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float | None:
    """AUC of the loss-threshold attack (member if loss < τ over all τ): 0.5 = no membership signal."""
    return auc(-member_losses, -nonmember_losses)


def l2_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two parameter vectors, in degrees."""
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denom == 0.0:
        return 0.0
    cos = float(np.clip(np.dot(a, b) / denom, -1.0, 1.0))
    return float(np.degrees(np.arccos(cos)))


def kl_divergence(reference_logits: np.ndarray, logits: np.ndarray) -> float | None:
    """Mean KL(P_reference ‖ P) of the predicted class distributions, in nats."""
    if len(logits) == 0:
        return None
    lp, lq = log_softmax(reference_logits), log_softmax(logits)
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=1)))


def js_divergence(reference_logits: np.ndarray, logits: np.ndarray) -> float | None:
    """Mean Jensen–Shannon divergence of the predicted class distributions, in nats (≤ ln 2)."""
    if len(logits) == 0:
        return None
    p, q = np.exp(log_softmax(reference_logits)), np.exp(log_softmax(logits))
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * (np.log(p) - np.log(m)), 0.0).sum(axis=1)
        kl_qm = np.where(q > 0, q * (np.log(q) - np.log(m)), 0.0).sum(axis=1)
    return float(np.mean(0.5 * (kl_pm + kl_qm)))
