"""Every registered method on one tiny in-process federation; reports and the aggregator on its results."""

import json
from pathlib import Path
from typing import Any

import pytest

from fedunlearn import unlearning
from fedunlearn.reporting.aggregate import main as report_main
from fedunlearn.reporting.plots import plot_methods, plot_rounds
from fedunlearn.reporting.tables import write_comparison
from fedunlearn.results import from_json
from tests.conftest import run_in_process


@pytest.fixture(scope="module")
def all_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.conftest import TINY, make_config

    cfg = make_config(
        *TINY,
        "fl.num_rounds=8",
        "fl.lr=0.1",
        "backdoor.clients=[1]",
        "forget.clients=[1]",
        "unlearning.methods=all",
        "unlearning.fedrecover.warmup_rounds=3",
        "unlearning.fedrecover.correction_period=4",
        "unlearning.fedrecover.final_rounds=1",
    )
    return run_in_process(cfg, tmp_path_factory.mktemp("all"))


def test_all_runs_every_registered_method(all_results: dict[str, Any]) -> None:
    assert set(all_results["unlearning"]) == set(unlearning.registered())
    for name, entry in all_results["unlearning"].items():
        m = entry["metrics"]
        assert 0.0 <= m["test_accuracy"] <= 1.0, name
        assert m["l2_to_retrain"] is not None, name


def test_exact_methods_agree_and_costs_are_counted(all_results: dict[str, Any]) -> None:
    u = all_results["unlearning"]
    # client 1 trained from round 1, so rollback restarts from M^1 and equals retrain
    assert u["rollback"]["metrics"]["l2_to_retrain"] == 0.0
    assert u["rollback"]["info"]["rollback_round"] == 1
    assert u["retrain"]["client_updates"] == 8 * 3
    info = u["fedrecover"]["info"]
    assert info["retrain_updates"] == 8 * 3
    assert info["exact_updates"] < info["retrain_updates"]  # estimated in rounds 5 and 7
    assert u["fedrecover"]["client_updates"] == info["exact_updates"]
    assert u["fedaccum"]["client_epochs"] == 0 and u["fedrecovery"]["client_epochs"] == 0
    assert u["kd"]["client_epochs"] == 0
    assert u["finetune"]["client_epochs"] == 5 * 3 * 2
    assert u["pga"]["client_epochs"] == pytest.approx(u["pga"]["info"]["ascent_epochs"] + 1 * 3 * 2)


def test_reports_and_aggregate(all_results: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for seed in (1, 2):
        run = tmp_path / "sweep" / str(seed)
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({**all_results, "config": {"seed": seed}}))
        typed = from_json(all_results)
        files = write_comparison(run, typed)
        assert [f.name for f in files] == ["comparison.md", "comparison.tex", "comparison.csv"]
        assert plot_methods(run, typed).stat().st_size > 1000
        assert plot_rounds(run, typed).stat().st_size > 1000
    md = (run / "comparison.md").read_text()
    assert "| federaser |" in md and "| before unlearning |" in md
    assert r"\begin{tabular}" in (run / "comparison.tex").read_text()
    csv_lines = (run / "comparison.csv").read_text().splitlines()
    assert csv_lines[0].startswith("method,exact,test_accuracy")
    assert len(csv_lines) == 2 + len(all_results["unlearning"])
    assert report_main([str(tmp_path / "sweep")]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and "± 0.000 (n=2)" in out  # identical runs: zero spread
    assert "1 settings" not in out and "### all runs: 2 run(s)" in out  # seeds alone: one group
    assert (tmp_path / "sweep" / "frontier.png").stat().st_size > 5000
    assert (tmp_path / "sweep" / "aggregate.csv").exists()
    assert (tmp_path / "sweep" / "frontier.pdf").exists()  # vector beside the PNG
    assert report_main([str(tmp_path / "nowhere")]) == 2
    other = tmp_path / "sweep" / "3"  # a run of another setting is a group of its own, never averaged in
    other.mkdir()
    (other / "results.json").write_text(json.dumps({**all_results, "config": {"seed": 3, "fl": {"num_clients": 20}}}))
    assert report_main([str(tmp_path / "sweep")]) == 0
    out = capsys.readouterr().out
    assert "3 runs in 2 settings" in out
    assert "### fl.num_clients=20: 1 run(s)" in out
    assert "### fl.num_clients=-: 2 run(s)" in out


@pytest.mark.parametrize(
    ("rule", "threshold", "steps", "stopped"),
    [
        ("accuracy", 1.01, 1, True),
        ("accuracy", 0.0, 5, False),
        ("distance", 1e-9, 1, True),
        ("distance", 1e9, 5, False),
    ],
)
def test_pga_checks_its_stop_after_every_ascent_step(
    tmp_path: Path, rule: str, threshold: float, steps: int, stopped: bool
) -> None:
    from tests.conftest import TINY, make_config

    # client 1 holds 80 samples: one batch of 128 per ascent epoch, at most 5 epochs
    key = "stop_accuracy" if rule == "accuracy" else "distance_threshold"
    cfg = make_config(
        *TINY, "forget.clients=[1]", "unlearning.methods=[pga]", f"unlearning.pga.stop={rule}",
        f"unlearning.pga.{key}={threshold}",
    )  # fmt: skip
    entry = run_in_process(cfg, tmp_path)["unlearning"]["pga"]
    info = entry["info"]
    assert (info["ascent_steps"], info["stopped_early"]) == (steps, stopped)
    assert info["ascent_epochs"] == steps
    assert entry["stop"] == {"rule": rule if stopped else "epochs", "after": steps}
