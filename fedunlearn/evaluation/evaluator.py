"""Evaluate a global model: utility, forgetting evidence, and closeness to the retrained model."""

from __future__ import annotations

import numpy as np
import torch

from fedunlearn.config import Config
from fedunlearn.core.params import Params, flatten, set_params
from fedunlearn.core.task import predict_logits
from fedunlearn.data import ArrayDataset, FederatedData
from fedunlearn.evaluation import lira
from fedunlearn.evaluation import metrics as m
from fedunlearn.evaluation.catalog import METRIC_KEYS
from fedunlearn.models import build_model

Metrics = dict[str, float | None]  # keyed by evaluation.catalog.METRIC_KEYS


class Evaluator:
    """Holds the evaluation sets of one run; ``evaluate`` returns the catalog's METRICS (results.json).

    Forgotten-client accuracy uses the samples exactly as the clients trained on them (backdoored
    ones included). Membership inference compares the forgotten clients' clean (unpoisoned)
    samples with the held-out test set, so that it measures membership, not the backdoor.
    """

    def __init__(self, cfg: Config, data: FederatedData, forget: list[int]) -> None:
        self.cfg = cfg
        self.data = data
        self.forget = sorted(forget)
        remaining = [c for c in range(data.num_clients) if c not in set(forget)]
        self.remaining = data.clients(remaining)
        self.forgotten = data.clients(sorted(forget))
        members = np.concatenate([data.partitions[c] for c in sorted(forget)]) if forget else np.zeros(0, np.int64)
        self.members = data.train.subset(members[~data.poisoned[members]])
        self.backdoor_target = cfg.backdoor.target_label
        self.model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)
        self.num_classes = data.num_classes
        self.batch = cfg.evaluation.batch_size
        self.device = torch.device(cfg.evaluation.device)
        held_out = np.arange(min(len(self.members), len(data.test)))
        # LiRA's targets: the forgotten clients' clean samples (members), then as many held-out ones
        self.targets = ArrayDataset(
            np.concatenate([self.members.x, data.test.x[held_out]]),
            np.concatenate([self.members.y, data.test.y[held_out]]),
        )
        self.reference: lira.Reference | None = None

    def phi(self, params: Params) -> np.ndarray:
        """LiRA's statistic of ``params`` on the targets (members first)."""
        return lira.scaled_confidence(self._logits(params, self.targets), self.targets.y)

    def use_references(self, phi_in: np.ndarray, phi_out: np.ndarray) -> None:
        """Fit LiRA's Gaussians from the in- and out-references' φ (models × targets); ``evaluate`` then reports
        the attack and the retrain z."""
        self.reference = lira.Reference.fit(phi_in, phi_out, len(self.members))

    def _logits(self, params: Params, data: ArrayDataset) -> np.ndarray:
        set_params(self.model, params)
        return predict_logits(self.model, data.x, self.batch, self.device)

    def test(self, params: Params) -> tuple[float, float]:
        """Test accuracy and mean loss: the per-round progress figures."""
        logits = self._logits(params, self.data.test)
        return float(m.accuracy(logits, self.data.test.y) or 0.0), float(
            m.per_sample_loss(logits, self.data.test.y).mean()
        )

    def on_remaining(self, params: Params) -> tuple[float, float]:
        """Accuracy and mean loss on the remaining clients' training data (what a federated evaluation reports)."""
        logits = self._logits(params, self.remaining)
        return float(m.accuracy(logits, self.remaining.y) or 0.0), float(
            m.per_sample_loss(logits, self.remaining.y).mean()
        )

    def evaluate(self, params: Params, retrained: Params | None = None) -> Metrics:
        test_logits = self._logits(params, self.data.test)
        forgotten_logits = self._logits(params, self.forgotten)
        test_losses = m.per_sample_loss(test_logits, self.data.test.y)
        forgotten_losses = m.per_sample_loss(forgotten_logits, self.forgotten.y)
        out: Metrics = dict.fromkeys(METRIC_KEYS)
        out["test_accuracy"] = m.accuracy(test_logits, self.data.test.y)
        out["test_loss"] = float(test_losses.mean())
        out["remaining_accuracy"] = m.accuracy(self._logits(params, self.remaining), self.remaining.y)
        out["forgotten_accuracy"] = m.accuracy(forgotten_logits, self.forgotten.y)
        out["forgotten_loss"] = float(forgotten_losses.mean()) if len(forgotten_losses) else None
        if self.data.backdoor_test is not None:
            triggered = self._logits(params, self.data.backdoor_test)
            out["backdoor_asr"] = float(np.mean(np.argmax(triggered, axis=1) == self.backdoor_target))
        member_losses = m.per_sample_loss(self._logits(params, self.members), self.members.y)
        out["mia_auc"] = m.loss_threshold_mia_auc(member_losses, test_losses)
        if self.reference is not None and len(self.members):
            phi = self.phi(params)
            out.update(lira.attack(phi, self.reference))
            out.update(lira.retrain_likeness(phi[: self.reference.members], self.reference))
        if retrained is not None:
            a, b = flatten(params), flatten(retrained)
            out["l2_to_retrain"] = m.l2_distance(a, b)
            out["angle_to_retrain"] = m.angle_degrees(a, b)
            ref_forgotten = self._logits(retrained, self.forgotten)
            ref_test = self._logits(retrained, self.data.test)
            out["kl_to_retrain"] = m.kl_divergence(ref_forgotten, forgotten_logits)
            out["js_to_retrain"] = m.js_divergence(ref_forgotten, forgotten_logits)
            out["kl_to_retrain_test"] = m.kl_divergence(ref_test, test_logits)
            out["js_to_retrain_test"] = m.js_divergence(ref_test, test_logits)
        return out
