"""One run of fedunlearn as named stages (``stages``), resumable (``checkpoint``), certified (``certificate``),
checked before it starts (``preflight``)."""

from fedunlearn.experiment.stages import run_experiment

__all__ = ["run_experiment"]
