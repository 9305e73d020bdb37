"""Hydra configuration of fedunlearn, installed as the ``fedunlearn.conf`` package."""
