"""Bad input fails at start; corrupted history stops a resumed run; certificates verify (no Ray needed)."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedunlearn.config import ConfigError
from fedunlearn.experiment.certificate import verify_certificate
from fedunlearn.history import HistoryCorruptError, HistoryStore
from tests.conftest import TINY, make_config, run_in_process

RUN = (*TINY, "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,federaser]")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fedunlearn", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A run made in-process (no Ray): history, checkpoint, models and certificate on disk."""
    cfg = make_config(*RUN)
    run_dir = tmp_path_factory.mktemp("finished")
    return run_dir, run_in_process(cfg, run_dir)


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    "overrides,exit_code,message",
    [
        (["fl.fraction_train=0.1", "fl.num_rounds=1", "forget.clients=[0]"], 2,
         "forget.clients: client(s) [0] never train in the 1 rounds"),
        (["forget.clients=[10]"], 2, "forget.clients: client id 10 does not exist; ids are 0..9"),
        (["unlearning.methods=[federaser,nope]"], 2,
         "unlearning.methods: unknown value 'nope'; allowed: crab, fedaccum, federaser"),
        (["unlearning.methods=[retrain,federaser]", "history.interval=3"], 2,
         "unlearning.federaser.interval: 2 is not a multiple of history.interval=3"),
        (["history.interval=2", "unlearning.methods=[fedrecover]"], 2, "history.interval: must be 1 for fedrecover"),
        (["fl.dropout_rate=1.0"], 2, "fl.dropout_rate: must be in [0.0, 1.0), got 1.0"),
        (["fl.lr=-0.1"], 2, "fl.lr: must be in (0.0, inf], got -0.1"),
        (["history.dtype=int8"], 2, "history.dtype: unknown value 'int8'; allowed: float32, float16"),
        # type errors are caught while Hydra composes: the same one line naming the key
        (["resume=maybe"], 2, "resume: Value 'maybe' is not a valid bool (type str)"),
    ],
)  # fmt: skip
def test_bad_config_fails_at_start(tmp_path: Path, overrides: list[str], exit_code: int, message: str) -> None:
    proc = cli(*overrides, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == exit_code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    if exit_code == 2:  # fedunlearn's own checks: one line
        assert len(proc.stderr.strip().splitlines()) == 1


def test_a_used_run_dir_needs_resume(finished_run, tmp_path: Path) -> None:
    run_dir = copy_run(finished_run[0], tmp_path / "run")
    proc = cli(*RUN, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2
    assert "resume: " in proc.stderr and "already holds a run; pass resume=true" in proc.stderr


def test_resume_with_another_config_is_refused(finished_run, tmp_path: Path) -> None:
    run_dir = copy_run(finished_run[0], tmp_path / "run")
    proc = cli(*RUN, "seed=5", "resume=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2
    assert "cannot resume" in proc.stderr and "different config" in proc.stderr


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda h: _flip_last_byte(h / "round_00003" / "client_00002.safetensors"),
         "history file for round 3, client 2 is corrupted (checksum mismatch)"),
        (lambda h: (h / "round_00002" / "client_00000.safetensors").write_bytes(b"\0" * 10),
         "history file for round 2, client 0 is truncated (10 of"),
        (lambda h: (h / "round_00004" / "global.safetensors").unlink(),
         "history file for round 4, global model is missing"),
        (lambda h: (h / "manifest.json").write_text("{not json"), "history manifest is unreadable"),
        (lambda h: (h / "manifest.json").unlink(), "history manifest is missing"),
    ],
)  # fmt: skip
def test_damaged_history_stops_a_resumed_run(finished_run, tmp_path: Path, damage: Any, message: str) -> None:
    run_dir = copy_run(finished_run[0], tmp_path / "run")
    damage(run_dir / "history")
    proc = cli(*RUN, "resume=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_certificate_records_the_request_and_verifies(finished_run, tmp_path: Path) -> None:
    src, results = finished_run
    cert = json.loads((src / "certificate-1.json").read_text())
    assert results["certificates"] == ["certificate-1.json"]
    assert cert["clients"] == [1] and set(cert["methods"]) == {"retrain", "federaser"}
    assert cert["methods"]["federaser"]["parameters"] == {
        "calibration_ratio": 0.5,
        "interval": 2,
        "granularity": "client",
        "layer_weights": "equal",
        "alignment": "start",
    }
    assert (
        cert["methods"]["federaser"]["evidence"]["backdoor_asr"]
        == results["unlearning"]["federaser"]["metrics"]["backdoor_asr"]
    )
    assert cert["history"]["file"] == "history/manifest-request-1.json" and len(cert["model_before"]["sha256"]) == 64
    assert verify_certificate(src / "certificate-1.json") == []

    run_dir = copy_run(src, tmp_path / "run")
    ok = subprocess.run(
        [sys.executable, "-c", "from fedunlearn.app.verify import main; main()",
         str(run_dir / "certificate-1.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0 and "OK" in ok.stdout
    _flip_last_byte(run_dir / "models" / "federaser.safetensors")
    _flip_last_byte(run_dir / "history" / "round_00001" / "client_00000.safetensors")
    problems = verify_certificate(run_dir / "certificate-1.json")
    history = "history file round_00001/client_00000.safetensors of round 1 is not the one recorded"
    assert problems == [f"model after federaser: {run_dir}/models/federaser.safetensors does not match the "
                        "certificate's SHA-256", history]  # fmt: skip
    (run_dir / "models" / "federaser.safetensors").write_bytes((src / "models" / "federaser.safetensors").read_bytes())
    assert verify_certificate(run_dir / "certificate-1.json") == [
        "history file round_00001/client_00000.safetensors of round 1 is not the one recorded"
    ]


# -- property-based ------------------------------------------------------------------------------

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(
    num_clients=st.integers(-2, 30),
    fraction=st.floats(-0.5, 1.5, allow_nan=False),
    dropout=st.floats(-0.2, 1.2, allow_nan=False),
    interval=st.integers(0, 6),
    forget=st.lists(st.integers(-2, 32), max_size=3),
    rounds=st.integers(0, 5),
)
def test_any_config_is_accepted_or_refused_by_name(
    num_clients: int, fraction: float, dropout: float, interval: int, forget: list[int], rounds: int
) -> None:
    """Whatever the values, composing gives a valid config or one ConfigError naming a key."""
    overrides = [
        f"fl.num_clients={num_clients}",
        f"fl.fraction_train={fraction}",
        f"fl.dropout_rate={dropout}",
        f"history.interval={interval}",
        f"forget.clients={forget}",
        f"fl.num_rounds={rounds}",
        "backdoor.clients=[]",
    ]
    try:
        cfg = make_config(*overrides)
    except ConfigError as err:
        assert err.key.split(".")[0] in {"fl", "history", "forget", "unlearning"}
        assert str(err).startswith(err.key)
        return
    assert cfg.fl.num_clients >= 1 and 0 < cfg.fl.fraction_train <= 1 and 0 <= cfg.fl.dropout_rate < 1
    assert all(0 <= c < cfg.fl.num_clients for c in cfg.forget.clients)


arrays = st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=20)


@SETTINGS
@given(
    rounds=st.lists(st.lists(st.integers(0, 9), max_size=4, unique=True), min_size=1, max_size=5),
    values=arrays,
    flip=st.integers(0, 10_000),
)
def test_history_round_trips_and_detects_any_flipped_byte(
    tmp_path_factory: pytest.TempPathFactory, rounds: list[list[int]], values: list[float], flip: int
) -> None:
    root = tmp_path_factory.mktemp("h")
    store = HistoryStore(root)
    base = np.asarray(values, np.float32)
    for t, clients in enumerate(rounds, start=1):
        updates = {c: {"w": base * (c + 1) + t} for c in clients}
        store.record_round(t, {"w": base + t}, updates, {c: c + 1 for c in clients})
    again = HistoryStore.open(root)
    for t, clients in enumerate(rounds, start=1):
        np.testing.assert_array_equal(again.global_model(t)["w"], base + t)
        assert again.participants(t) == sorted(clients)
        for c in clients:
            np.testing.assert_array_equal(again.client_update(t, c)["w"], base * (c + 1) + t)
    again.verify()
    files = sorted(root.rglob("*.safetensors"))
    victim = files[flip % len(files)]
    data = bytearray(victim.read_bytes())
    data[flip % len(data)] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(HistoryCorruptError, match=r"round \d+, (global model|client \d+) is corrupted"):
        again.verify()
