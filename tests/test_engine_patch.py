"""The two places fedunlearn reaches past Flower's public API — the simulation engine's message extractor
(flower/engine.py) and the server's node list (flower/server_app.py) — change how fast a run goes, never what it
computes: a short run with them and with Flower's own code paths forced gives the same results.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from fedunlearn.flower.engine import FLOWER_OWN_ENV
from tests.conftest import TINY, run_cli

pytestmark = pytest.mark.e2e
TIMING = ("wall_s", "wall", "placement", "distill_s", "selection_s", "federated_evaluation_s")


def without_timings(doc: Any) -> Any:
    """The document with every timing and placement removed (they differ from run to run)."""
    if isinstance(doc, dict):
        return {k: without_timings(v) for k, v in doc.items() if k not in TIMING}
    if isinstance(doc, list):
        return [without_timings(v) for v in doc]
    return doc


def test_flowers_own_code_paths_give_the_same_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = [*TINY, "fl.num_rounds=3", "forget.clients=[1]", "backdoor.clients=[1]",
            "unlearning.methods=[retrain,federaser]"]  # fmt: skip
    docs = {}
    for own in ("0", "1"):
        monkeypatch.setenv(FLOWER_OWN_ENV, own)
        proc = run_cli(*args, f"hydra.run.dir={tmp_path / own}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        docs[own] = json.loads((tmp_path / own / "results.json").read_text())
        log = (tmp_path / own / "fedunlearn.log").read_text()
        assert ("using Flower's" in log) == (own == "1")
    assert without_timings(docs["0"]) == without_timings(docs["1"])
    assert os.environ[FLOWER_OWN_ENV] == "1"
