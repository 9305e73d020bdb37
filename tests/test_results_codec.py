"""The one codec between results and JSON: results.json's fields as the contract names them, a round trip that
loses nothing, and files of older releases still read."""

import json
import math

from fedunlearn.core.fedavg import RoundRecord
from fedunlearn.core.federation import ClientFailure, Cost
from fedunlearn.results import (
    Bytes,
    Compute,
    Divergence,
    HistoryInfo,
    MethodRecord,
    MethodResult,
    RequestResult,
    RunResult,
    TrainingResult,
    decode,
    encode,
    from_json,
    to_json,
)
from fedunlearn.unlearning import Stop


def _round(r: int, failures: bool = False) -> RoundRecord:
    return RoundRecord(
        round=r, test_accuracy=0.5 + r / 100, test_loss=1.0 / r, wall_s=0.25, clients=[0, 2],
        failed_clients=[1] if failures else None,
        failures=[ClientFailure(cid=3, error="ValueError: x", detail="Traceback ...")] if failures else None,
        phase="train",
    )  # fmt: skip


def _method(epochs: float) -> MethodResult:
    cost = Cost(rounds=2, client_updates=4, client_epochs=epochs, bytes_to_clients=10, bytes_from_clients=6,
                client_train_samples=300.0, client_forward_samples=30.0, server_train_samples=0.0)  # fmt: skip
    work = MethodRecord(wall_s=1.5, cost=cost, recovery_rounds=[_round(1)], info={"steps": 3}, stop=Stop("rounds", 2))
    reference = MethodRecord(wall_s=3.0, cost=Cost(client_epochs=8.0, client_train_samples=900.0), recovery_rounds=[],
                             info={}, stop=None, exact=True)  # fmt: skip
    return MethodResult.of([0], work, {"test_accuracy": 0.9, "backdoor_asr": float("nan")}, reference)


def _run() -> RunResult:
    training = TrainingResult(
        rounds=[_round(1), _round(2, failures=True)], wall_s=4.0, client_epochs=8.0, client_updates=4,
        num_parameters=100, bytes=Bytes(to_clients=1, from_clients=2), diverged=Divergence(round=2, reason="nan"),
        compute=Compute.of(Cost(client_train_samples=1000.0, client_forward_samples=30.0)),
    )  # fmt: skip
    request = RequestResult(request=1, after_round=2, result=_method(0.5), forgotten_so_far=[0], method="federaser",
                            metrics_before={"test_accuracy": 0.8})  # fmt: skip
    return RunResult(
        training=training,
        history=HistoryInfo(bytes=5, rounds_stored=2, dtype="float32", interval=1, path="history/"),
        config={"seed": 0},
        requests=[request],
        before_unlearning={"test_accuracy": 0.8},
        unlearning={"federaser": _method(2.0)},
    )


def test_results_json_fields_are_the_contracts() -> None:
    doc = to_json(_run())
    assert list(doc) == ["config", "training", "history", "requests", "before_unlearning", "unlearning"]
    assert doc["before_unlearning"] == {"metrics": {"test_accuracy": 0.8}}
    first, second = doc["training"]["rounds"]
    assert "failed_clients" not in first and "failures" not in first  # optional keys only when present
    assert second["failures"] == [{"client": 3, "error": "ValueError: x"}]  # the traceback stays in the log
    assert doc["training"]["compute"] == {"sge": 1010, "client_training": 1000, "client_forward": 30,
                                          "server_training": 0, "server_forward": 0}  # fmt: skip
    fed = doc["unlearning"]["federaser"]
    assert fed["client_epochs"] == 2 and isinstance(fed["client_epochs"], int)
    assert fed["metrics"]["backdoor_asr"] is None  # JSON has no NaN
    assert fed["speedup_vs_retrain"] == {"client_epochs": 4.0, "wall": 2.0, "bytes": 0.0, "compute": 900 / 310}
    assert fed["stop"] == {"rule": "rounds", "after": 2}
    req = doc["requests"][0]
    assert (req["request"], req["after_round"], req["method"], req["client_epochs"]) == (1, 2, "federaser", 0.5)
    json.dumps(doc, allow_nan=False)


def test_a_round_trip_loses_nothing() -> None:
    run = _run()
    again = from_json(json.loads(json.dumps(to_json(run))))
    assert to_json(again) == to_json(run)
    assert again.training.rounds[1].failures == [ClientFailure(cid=3, error="ValueError: x")]
    assert again.requests is not None and again.requests[0].result.stop == Stop("rounds", 2)
    assert again.unlearning is not None and math.isclose(again.unlearning["federaser"].compute.sge, 310.0)  # type: ignore[union-attr]


def test_a_file_of_an_older_release_reads() -> None:
    """Fields an older results.json lacks (compute, exact, bytes, client_updates, phase) take empty values."""
    old = {
        "config": {},
        "training": {"rounds": [{"round": 1, "test_accuracy": 0.5, "test_loss": 1.0, "wall_s": 0.1, "clients": [0]}],
                     "wall_s": 1.0, "client_epochs": 2},
        "history": {"bytes": 1, "rounds_stored": 1, "dtype": "float16", "interval": 1, "path": "history/"},
        "unlearning": {"retrain": {"clients": [0], "wall_s": 1.0, "client_epochs": 1, "rounds": 1,
                                   "speedup_vs_retrain": None, "metrics": {}}},
    }  # fmt: skip
    run = from_json(old)
    assert run.training.compute is None and run.training.bytes == Bytes(to_clients=0, from_clients=0)
    assert run.training.rounds[0].phase == "" and run.training.rounds[0].unit == "round"
    retrain = run.unlearning["retrain"]  # type: ignore[index]
    assert (retrain.client_updates, retrain.exact, retrain.recovery_rounds, retrain.info) == (0, None, [], {})


def test_a_checkpoint_record_round_trips() -> None:
    work = MethodRecord(wall_s=1.0, cost=Cost(rounds=3, client_epochs=1.5), recovery_rounds=[_round(1)], info={},
                        stop=None, exact=False)  # fmt: skip
    assert decode(MethodRecord, json.loads(json.dumps(encode(work)))) == work
