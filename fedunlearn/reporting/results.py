"""Write results.json (the stable contract in the README) next to the run's Hydra outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedunlearn.history.writer import atomic_write

RESULTS_FILE = "results.json"


def write_results(run_dir: Path, config: dict[str, Any], results: dict[str, Any]) -> Path:
    path = run_dir / RESULTS_FILE
    atomic_write(path, json.dumps({"config": config, **results}, indent=2).encode())
    return path


def read_results(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data
