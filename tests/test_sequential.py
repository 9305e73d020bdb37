"""forget.schedule: sequential requests while training goes on, in-process (LocalTrainer)."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fedunlearn.config import ConfigError
from fedunlearn.core.federation import LocalTrainer, Replies
from fedunlearn.core.params import Params
from fedunlearn.core.task import TrainPlan
from fedunlearn.experiment.certificate import verify_certificate
from tests.conftest import TINY, local_trainer, make_config, run_in_process

SCHEDULE = (
    *TINY,
    "fl.num_clients=6",
    "fl.num_rounds=8",
    "dataset.num_samples=600",
    "backdoor.clients=[1]",
    "forget.clients=[]",
    "forget.schedule=[{round:4,clients:[1]},{round:6,clients:[4]}]",
    "unlearning.methods=[federaser]",
)


class Recorder:
    """LocalTrainer that records every call's group and clients; optionally crashes at call ``crash_at``."""

    def __init__(self, inner: LocalTrainer, crash_at: int | None = None) -> None:
        self.inner, self.crash_at = inner, crash_at
        self.calls: list[tuple[str, list[int]]] = []

    def train(self, params: Params, seeds: Mapping[int, int], plan: TrainPlan, group: str) -> Replies:
        if self.crash_at is not None and len(self.calls) == self.crash_at:
            raise KeyboardInterrupt("simulated crash")
        self.calls.append((group, sorted(seeds)))
        return self.inner.train(params, seeds, plan, group)


def run(tmp: Path, *extra: str, crash_at: int | None = None) -> tuple[dict[str, Any], Recorder]:
    cfg = make_config(*SCHEDULE, *extra)
    recorder = Recorder(local_trainer(cfg), crash_at)
    return run_in_process(cfg, tmp, recorder), recorder


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Recorder, Path]:
    tmp = tmp_path_factory.mktemp("seq")
    results, recorder = run(tmp)
    return results, recorder, tmp


def test_each_request_unlearns_everyone_departed_so_far(sequential) -> None:
    res, recorder, _ = sequential
    first, second = res["requests"]
    assert (first["request"], first["after_round"], first["clients"], first["forgotten_so_far"]) == (1, 4, [1], [1])
    assert (second["after_round"], second["clients"], second["forgotten_so_far"]) == (6, [4], [1, 4])
    assert first["metrics_before"]["backdoor_asr"] > first["metrics"]["backdoor_asr"]
    for group, asked in recorder.calls:
        if group.startswith("federaser-"):
            assert 1 not in asked
    # training after a request never samples the departed clients again
    clients_of = {r["round"]: r["clients"] for r in res["training"]["rounds"]}
    assert 1 in clients_of[4] and all(1 not in clients_of[t] for t in (5, 6, 7, 8))
    assert 4 in clients_of[6] and all(4 not in clients_of[t] for t in (7, 8))


def test_the_run_ends_compared_with_retrain_without_all_departed(sequential) -> None:
    res, recorder, _ = sequential
    assert set(res["unlearning"]) == {"federaser", "retrain"}
    retrain = res["unlearning"]["retrain"]
    assert retrain["clients"] == [1, 4] and retrain["metrics"]["l2_to_retrain"] == 0.0
    retrain_calls = [asked for group, asked in recorder.calls if group.startswith("retrain-")]
    assert len(retrain_calls) == 8 and all(1 not in a and 4 not in a for a in retrain_calls)
    seq = res["unlearning"]["federaser"]
    assert seq["client_epochs"] == sum(r["client_epochs"] for r in res["requests"])
    assert seq["metrics"]["l2_to_retrain"] > 0 and seq["speedup_vs_retrain"]["client_epochs"] > 1


def test_a_certificate_per_request_verifies(sequential) -> None:
    res, _, run_dir = sequential
    assert res["certificates"] == ["certificate-1.json", "certificate-2.json"]
    for name in res["certificates"]:
        assert verify_certificate(run_dir / name) == []


def test_a_crash_mid_schedule_resumes_to_the_same_results(sequential, tmp_path: Path) -> None:
    res, recorder, _ = sequential
    # crash inside request 2's FedEraser calibration: training checkpointed, request 1 done
    crash_at = next(i for i, (g, _) in enumerate(recorder.calls) if g.startswith("federaser-") and i > 6) + 1
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, crash_at=crash_at)
    resumed, _ = run(tmp_path, "resume=true")

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("wall_s", "wall")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    assert strip(resumed) == strip(res)


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["forget.schedule=[{round:4,clients:[1]}]", "forget.clients=[2]"], "forget.schedule"),
        (["forget.schedule=[{round:5,clients:[1]},{round:5,clients:[2]}]"], "forget.schedule[1].round"),
        (["forget.schedule=[{round:9,clients:[1]}]"], "forget.schedule[0].round"),
        (["forget.schedule=[{round:2,clients:[7]}]"], "forget.schedule[0].clients"),
        (["forget.schedule=[{round:2,clients:[1]},{round:3,clients:[1]}]"], "forget.schedule"),
        (["forget.schedule=[{round:2,clients:[1]}]", "unlearning.methods=[federaser,fedaccum]"], "unlearning.methods"),
        (["forget.schedule=[{round:2,clients:[1]}]", "unlearning.methods=[retrain]"], "unlearning.methods"),
        (["forget.schedule=[{round:2,clients:[1]}]", "evaluation.references=2"], "evaluation.references"),
    ],
)
def test_bad_schedules_name_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(*SCHEDULE, *overrides)
    assert err.value.key == key
