"""benchmarks/reproduce.py end to end on a subsample: both protocols run through the script's own code path (the
run, PGA alone on the same history, the papers' metrics) and its table puts the paper beside fedunlearn."""

import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import FASHION_FILES

REPO = Path(__file__).parents[1]


@pytest.mark.skipif(not FASHION_FILES.exists(), reason="needs Debian's package dataset-fashion-mnist "
                    "(apt-get install dataset-fashion-mnist)")  # fmt: skip
def test_both_protocols_run_and_print_the_paper_beside_fedunlearn(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from reproduce import PAPER, Job, run_job, table

    small = ("fl.num_rounds=1", "dataset.max_train_samples=600", "dataset.max_test_samples=200")
    threads = torch.get_num_threads()
    try:
        runs = {p: run_job(Job(p, 0, small, tmp_path, "cpu", 1)) for p in ("pga_paper", "crab_paper")}
    finally:
        torch.set_num_threads(threads)
    assert set(runs["pga_paper"]["paper_metrics"]) == {"before", "retrain", "pga", "pga_alone"}
    assert set(runs["crab_paper"]["paper_metrics"]) == {"before", "retrain", "federaser", "crab"}
    for protocol, run in runs.items():
        for clean, backdoor in run["paper_metrics"].values():
            assert 0 <= clean <= 100 and 0 <= backdoor <= 100
        text = table(protocol, [run], "a test")
        assert text.count("\n| ") == 1 + len(PAPER[protocol])  # the header and one row per published model
        assert "-" not in [cell.strip() for line in text.splitlines()[6:] for cell in line.split("|")[1:-1]]
