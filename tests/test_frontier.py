"""The cost–quality frontier: points against retrain, the Pareto set, and the plots of a run and of a sweep."""

import math
from pathlib import Path

from fedunlearn.reporting.plots import Point, pareto, plot_frontier, starred


def test_pareto_keeps_the_methods_nothing_beats_on_every_axis() -> None:
    points = [
        Point("fast-bad", 100.0, 10.0, 0.0),
        Point("slow-good", 2.0, 0.0, 0.0),
        Point("dominated", 2.0, 5.0, 1.0),  # slow-good is as fast and better on both gaps
        Point("free", math.inf, 20.0, 50.0),
        Point("middle", 20.0, 0.5, 0.0),
    ]
    assert pareto(points) == {"fast-bad", "slow-good", "free", "middle"}
    assert pareto([Point("a", 5.0, 1.0, None), Point("b", 5.0, 1.0, None)]) == {"a", "b"}  # equal: neither dominates


def test_only_methods_within_the_tolerance_are_starred() -> None:
    points = [
        Point("fedaccum", math.inf, 46.0, 0.0),  # free but 46 points worse: Pareto-optimal, not useful
        Point("federaser", 4.4, 0.5, 0.0),
        Point("kd_recover", 20.0, 0.8, 1.5),
        Point("leaky", 50.0, 0.0, 30.0),  # keeps the backdoor
    ]
    assert pareto(points) == {"fedaccum", "federaser", "kd_recover", "leaky"}
    assert starred(points, (10, 1, 2)) == {"federaser", "kd_recover"}
    assert starred(points, (10, 0.6, 2)) == {"federaser"}


def test_frontier_plot_writes_png_and_pdf(tmp_path: Path) -> None:
    points = [Point("kd", math.inf, 3.0, 0.0), Point("federaser", 4.4, 0.5, 0.0, 0.2, 0.3, 0.1),
              Point("fedaccum", math.inf, -46.0, 0.0)]  # fmt: skip
    path = plot_frontier(tmp_path / "f.png", points, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    from PIL import Image

    assert Image.open(path).info["dpi"][0] >= 299  # print resolution


def _method(acc: float, asr: float, epochs: float, wall: float, z: float | None) -> dict:
    return {
        "metrics": {"test_accuracy": acc, "backdoor_asr": asr, "retrain_z": z},
        "wall_s": wall, "client_epochs": epochs, "compute": {"sge": 10 * epochs},
        "speedup_vs_retrain": {"client_epochs": 100 / epochs, "compute": 100 / epochs, "bytes": 1.0},
        "bytes": {"to_clients": 1, "from_clients": 1}, "stop": None,
    }  # fmt: skip


def test_the_frontier_decides_over_seeds_and_shows_the_retrain_z() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from frontier import over_seeds, rows_of, table

    runs = []
    for seed, (acc, z) in enumerate([(0.955, 0.1), (0.957, -0.2), (0.954, 0.0)]):
        results = {"unlearning": {"retrain": _method(0.955, 0.0, 100, 10.0, 0.0), "fast": _method(acc, 0.0, 5, 0.5, z)}}
        runs.append({"rows": rows_of(results, {}), "seed": seed, "retrain": {"test_accuracy": 0.955,
                     "backdoor_asr": 0.0, "wall_s": 10.0}, "before": {"test_accuracy": 0.96, "backdoor_asr": 0.9},
                     "training": {"round_ms": 500.0}})  # fmt: skip
    methods = over_seeds(runs)
    fast = next(m for m in methods if m["method"] == "fast")
    assert fast["passes"]  # 20x epochs, compute and wall; accuracy gap -0.03 ± 0.38 points; ASR gap 0
    assert abs(fast["retrain_z"]["mean"] - (-0.1 / 3)) < 1e-9
    row = next(line for line in table({"label": "s", "overrides": [], "runs": runs, "methods": methods})
               if line.startswith("| fast"))  # fmt: skip
    assert "| -0.03 ± " in row and row.endswith("| **pass** |")
