"""Utility, forgetting and closeness-to-retrain metrics."""

from fedunlearn.evaluation.evaluator import METRIC_NAMES, Evaluator

__all__ = ["METRIC_NAMES", "Evaluator"]
