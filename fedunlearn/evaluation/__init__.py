"""Utility, forgetting and closeness-to-retrain metrics (each defined once in ``catalog``)."""

from fedunlearn.evaluation.catalog import METRIC_KEYS, METRICS
from fedunlearn.evaluation.evaluator import Evaluator, Metrics

__all__ = ["METRICS", "METRIC_KEYS", "Evaluator", "Metrics"]
