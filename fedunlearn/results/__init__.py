"""A run's typed results (model), the one codec that writes and reads them (codec), and results.json (files)."""

from fedunlearn.results.codec import decode, encode, finite
from fedunlearn.results.files import RESULTS_FILE, from_json, load, to_json, write_results
from fedunlearn.results.model import (
    Bytes,
    Compute,
    Divergence,
    HistoryInfo,
    MethodRecord,
    MethodResult,
    RequestResult,
    RunResult,
    Speedup,
    TrainingResult,
    ratio,
)

__all__ = [
    "RESULTS_FILE",
    "Bytes",
    "Compute",
    "Divergence",
    "HistoryInfo",
    "MethodRecord",
    "MethodResult",
    "RequestResult",
    "RunResult",
    "Speedup",
    "TrainingResult",
    "decode",
    "encode",
    "finite",
    "from_json",
    "load",
    "ratio",
    "to_json",
    "write_results",
]
