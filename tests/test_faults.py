"""Safe by default, and faults end in one line: a local Ray nobody else can reach, one run per directory, a full
disk, a reference that is not exact, edited certificates, damaged checkpoints."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from fedunlearn.core.federation import InexactReference
from fedunlearn.experiment.certificate import verify_certificate
from fedunlearn.experiment.lock import LOCK_FILE, RunDirBusy, lock_run_dir, release_run_dir
from tests.conftest import TINY, load_results, make_config, run_cli, run_in_process
from tests.test_bad_inputs import STARTUP, assert_one_line, cli

REPO = Path(__file__).resolve().parents[1]
RUN = (*TINY, "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,federaser]")
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


# -- a local Ray nobody else can reach --------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    me = psutil.Process(pid)
    return [me, *me.children(recursive=True)]


def _get_cluster_id(address: str, token: str | None) -> Any:
    """The GCS's first RPC of any ``ray.init(address=...)``, with or without the run's token; the gRPC status code."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        metadata = [("authorization", f"Bearer {token}")] if token else None
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=10, metadata=metadata)
        except grpc.RpcError as err:
            return err.code()
        return grpc.StatusCode.OK


@pytest.mark.e2e
def test_a_local_run_listens_on_loopback_only_and_needs_its_token(tmp_path: Path) -> None:
    import grpc

    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedunlearn", *RUN, "fl.num_rounds=400", "ray.num_cpus=2", f"hydra.run.dir={run_dir}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "[train] round 2/" not in _text(run_dir / "fedunlearn.log"):
            assert proc.poll() is None, _text(run_dir / "fedunlearn.log")[-2000:]
            time.sleep(0.5)
        tree = _tree(proc.pid)
        pids = {p.pid for p in tree}
        listening = [c for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in pids]
        names = {psutil.Process(c.pid).name() for c in listening}
        assert "gcs_server" in names and "raylet" in names, names  # the run's own Ray, found by process
        exposed = [(c.laddr.ip, c.laddr.port, psutil.Process(c.pid).name()) for c in listening]
        assert all(ip in LOOPBACK for ip, _, _ in exposed), exposed

        gcs = next(c for c in listening if psutil.Process(c.pid).name() == "gcs_server")
        address = f"127.0.0.1:{gcs.laddr.port}"
        token = psutil.Process(gcs.pid).environ()["RAY_AUTH_TOKEN"]  # what the driver gave the Ray it started
        assert _get_cluster_id(address, None) == grpc.StatusCode.UNAUTHENTICATED  # another process, no token
        assert _get_cluster_id(address, "0" * 64) == grpc.StatusCode.UNAUTHENTICATED
        assert _get_cluster_id(address, token) == grpc.StatusCode.OK  # the token is what keeps it out
        assert all(token not in " ".join(p.cmdline()) for p in tree)  # not on any command line (`ps` shows those)
        log_dir = next(a.split("=", 1)[1] for a in psutil.Process(gcs.pid).cmdline() if a.startswith("--log_dir="))
        for folder in (run_dir, Path(log_dir).parent):  # the run directory and this Ray's session directory
            assert not [f for f in folder.rglob("*") if f.is_file() and token.encode() in f.read_bytes()], folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_the_private_settings_are_restored_after_the_run(monkeypatch) -> None:
    from ray._private import ray_constants

    from fedunlearn.flower.simulation import private_ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)
    before = ray_constants.ENABLE_RAY_CLUSTER
    with private_ray():
        assert os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) == 64
        assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0" and ray_constants.ENABLE_RAY_CLUSTER is False
        first = os.environ["RAY_AUTH_TOKEN"]
    assert os.environ["RAY_AUTH_MODE"] == "disabled" and "RAY_AUTH_TOKEN" not in os.environ
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ and before == ray_constants.ENABLE_RAY_CLUSTER
    with private_ray():
        assert os.environ["RAY_AUTH_TOKEN"] != first  # a fresh token for every run


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


# -- one run per directory ----------------------------------------------------------------------------------------


def test_a_second_run_into_a_directory_in_use_ends_at_once_naming_the_holder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / LOCK_FILE, "w") as held:  # what a live run holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        proc, wall = cli(*RUN, f"hydra.run.dir={run_dir}")
    assert_one_line(proc, wall, f"{run_dir} is in use by another fedunlearn run (PID {os.getpid()})", STARTUP, run_dir)
    assert proc.returncode == 2
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]  # refused before Hydra wrote its config or log


def test_the_lock_is_exclusive_and_a_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(dead.stdout)  # a run killed with -9 leaves its PID, not its lock
    note = lock_run_dir(tmp_path)
    assert note == (
        f"took over the lock of {tmp_path.resolve()} from PID {int(dead.stdout)}, which is no longer running "
        "(a killed or crashed run)"
    )
    assert lock_run_dir(tmp_path) is None  # this process holds it already
    probe = "import fcntl; f = open({!r}, 'a'); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)"
    other = subprocess.run([sys.executable, "-c", probe.format(str(tmp_path / LOCK_FILE))], capture_output=True)
    assert other.returncode != 0 and b"BlockingIOError" in other.stderr
    assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    release_run_dir(tmp_path)
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released cleanly: nothing for the next run to take over
    assert lock_run_dir(tmp_path) is None
    release_run_dir(tmp_path)
    assert str(RunDirBusy(tmp_path, 42)).startswith(f"{tmp_path} is in use by another fedunlearn run (PID 42)")


def test_a_directory_inside_a_locked_one_is_refused(tmp_path: Path) -> None:
    """A single run into a job directory of a live multirun: the sweep directory above it is locked."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from fedunlearn.experiment.lock import lock_run_dir; "
         f"lock_run_dir({str(tmp_path)!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirBusy, match=rf"in use by another fedunlearn run \(PID {holder.pid}\)"):
            lock_run_dir(tmp_path / "0")
    finally:
        holder.communicate("")
    assert lock_run_dir(tmp_path / "0") is None  # free once the holder exited
    release_run_dir(tmp_path / "0")


# -- a full disk ----------------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_full_disk_ends_in_one_line_and_the_run_resumes_once_there_is_room(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [*RUN, "ray.num_cpus=2", f"hydra.run.dir={run_dir}"]
    t0 = time.monotonic()
    full = subprocess.run(
        [sys.executable, str(REPO / "tests" / "full_disk.py"), "round_00003", *args],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    assert full.returncode == 2, full.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"fedunlearn: cannot write {run_dir}/history/round_00003/"), lines
    assert "No space left on device; fix that, then continue with `fedunlearn" in lines[0]
    assert f"resume=true` (log: {run_dir / 'fedunlearn.log'})" in lines[0]
    assert "Traceback" not in full.stderr + full.stdout and time.monotonic() - t0 < 120
    log = (run_dir / "fedunlearn.log").read_text()
    assert "[train] round 2/4" in log and "RunFileError" in log  # the log is intact up to the failure
    assert not list(run_dir.rglob(".*.tmp"))

    resumed = run_cli(*args[:-2], "resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (run_dir / "fedunlearn.log").read_text()
    assert "resuming after training round 2 of 4" in log
    assert "took over the lock" not in log  # the failed run ended cleanly: its lock was released
    assert len(load_results(run_dir)["training"]["rounds"]) == 4


def test_the_reports_writes_fail_as_file_errors_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    from fedunlearn.history import writer
    from fedunlearn.history.writer import RunFileError
    from fedunlearn.reporting.tables import write_comparison
    from fedunlearn.results import from_json

    result = from_json(run_in_process(make_config(*RUN), tmp_path / "run"))

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer.os, "fsync", full)
    with pytest.raises(RunFileError, match=f"cannot write {tmp_path / 'out' / 'comparison.md'}: No space left"):
        write_comparison(tmp_path / "out", result)


def test_only_the_runs_own_files_are_file_errors(tmp_path: Path) -> None:
    from fedunlearn.app.errors import _inside

    assert _inside(str(tmp_path / "run" / "history" / "x"), tmp_path / "run")
    assert not _inside("/usr/share/datasets/x", tmp_path / "run") and not _inside(None, tmp_path / "run")


def test_the_run_log_stops_quietly_when_its_disk_is_full(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fedunlearn.app.errors import RunLogHandler

    handler = RunLogHandler(tmp_path / "run.log")
    logger = logging.getLogger("fedunlearn.test-full-log")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before")

        class Full:
            def write(self, text: str) -> None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def flush(self) -> None: ...

        handler.stream, real = Full(), handler.stream  # type: ignore[assignment]
        for i in range(50):
            logger.warning("lost %d", i)
        handler.stream = real
        logger.warning("after")  # once failed, the handler writes nothing more (the run ends on the same cause)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert "Logging error" not in capsys.readouterr().err
    assert (tmp_path / "run.log").read_text().splitlines() == ["before"]
    assert isinstance(handler.failed, OSError) and handler.failed.errno == errno.ENOSPC


# -- a reference that is not exact --------------------------------------------------------------------------------


def test_a_client_crash_in_retrain_stops_the_run_even_when_tolerated(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FEDUNLEARN_INJECT_FAULT", "retrain-3:2")
    cfg = make_config(*RUN, "fl.max_client_failures=1")
    with pytest.raises(InexactReference, match=r"client 2 failed in round 3 of retrain: InjectedFault"):
        run_in_process(cfg, tmp_path / "run")


def test_an_allowed_crash_in_retrain_marks_it_inexact_everywhere(tmp_path: Path, monkeypatch) -> None:
    from fedunlearn.reporting.console import summary
    from fedunlearn.results import from_json

    monkeypatch.setenv("FEDUNLEARN_INJECT_FAULT", "retrain-3:2,federaser-2:3")
    cfg = make_config(*RUN, "fl.max_client_failures=1", "fl.exact_reference=false")
    res = run_in_process(cfg, tmp_path / "run")
    assert res["unlearning"]["retrain"]["exact"] is False
    assert res["unlearning"]["federaser"]["exact"] is None  # approximate by construction: not a reference
    text = summary(from_json(res))
    assert "retrain (inexact)" in text and "so every distance to retrain is to an inexact reference" in text
    from fedunlearn.reporting.tables import write_comparison

    write_comparison(tmp_path / "run", from_json(res))
    assert "| retrain (inexact) |" in (tmp_path / "run" / "comparison.md").read_text()
    assert "retrain,False," in (tmp_path / "run" / "comparison.csv").read_text()
    cert = json.loads((tmp_path / "run" / "certificate-1.json").read_text())
    assert cert["reference_exact"] is False and cert["methods"]["retrain"]["exact"] is False


# -- certificates and checkpoints ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fedunlearn.app.compose import config_container

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    results = run_in_process(make_config(*RUN), run_dir)
    (run_dir / "results.json").write_text(json.dumps({**results, "config": config_container(list(RUN))}))
    return run_dir


def _edited(src: Path, dst: Path, edit: Any) -> Path:
    shutil.copytree(src, dst)
    path = dst / "certificate-1.json"
    cert = json.loads(path.read_text())
    edit(cert)
    path.write_text(json.dumps(cert, indent=2))
    return path


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(clients=[3]),
        lambda c: c["methods"]["federaser"]["evidence"].update(backdoor_asr=0.123456),
        lambda c: c["methods"]["federaser"]["parameters"].update(calibration_ratio=0.9),
        lambda c: c["methods"].pop("federaser"),
        lambda c: c.update(reference_exact=True, issued_at="2020-01-01T00:00:00+00:00"),
    ],
    ids=["clients", "evidence", "parameters", "removed-method", "dates"],
)
def test_an_edited_certificate_claim_fails_verification_in_one_line(finished: Path, tmp_path: Path, edit: Any) -> None:
    assert verify_certificate(finished / "certificate-1.json") == []
    cert = _edited(finished, tmp_path / "run", edit)
    assert verify_certificate(cert) == [
        "its fields were edited after it was written (the digest over them does not match)"
    ]
    proc = subprocess.run(
        [sys.executable, "-c", "from fedunlearn.app.verify import main; main()", str(cert)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert (
        proc.stderr.strip() == f"{cert}: FAILED: its fields were edited after it was written (the digest over "
        "them does not match)"
    )


def test_a_certificate_without_its_digest_fails(finished: Path, tmp_path: Path) -> None:
    cert = _edited(finished, tmp_path / "run", lambda c: c.pop("digest"))
    assert verify_certificate(cert) == [
        "it has no digest: its claims cannot be checked (edited, or not written by fedunlearn)"
    ]


def test_a_damaged_model_of_a_sequential_request_is_found_before_ray_starts(tmp_path: Path) -> None:
    from tests.test_sequential import SCHEDULE

    run_dir = tmp_path / "run"
    run_in_process(make_config(*SCHEDULE), run_dir)
    victim = run_dir / "models" / "before-request-1.safetensors"
    victim.write_bytes(victim.read_bytes()[:-8])
    proc, wall = cli(*SCHEDULE, "resume=true", f"hydra.run.dir={run_dir}")
    assert_one_line(proc, wall, "models/before-request-1.safetensors does not match its checksum", STARTUP,
                    tmp_path / "none")  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d: (d / "checkpoint" / "training.safetensors").write_bytes(b"\0" * 64),
         "checkpoint/training.safetensors does not match its checksum (damaged or truncated)"),
        (lambda d: (d / "models" / "federaser.safetensors").unlink(), "models/federaser.safetensors is missing"),
        (lambda d: (d / "checkpoint" / "state.json").write_text("{"), "checkpoint/state.json is unreadable"),
    ],
    ids=["truncated-training", "missing-stage-model", "unreadable-state"],
)  # fmt: skip
def test_a_damaged_checkpoint_is_found_before_ray_starts_and_says_what_to_do(
    finished: Path, tmp_path: Path, damage: Any, says: str
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    damage(run_dir)
    proc, wall = cli(*RUN, "resume=true", f"hydra.run.dir={run_dir}")
    assert_one_line(proc, wall, says, STARTUP, tmp_path / "none")
    assert proc.returncode == 2 and "start it again in another hydra.run.dir" in proc.stderr
    assert "Ray:" not in _text(run_dir / "fedunlearn.log")  # found by the start-up checks, not after Ray started


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from fedunlearn.app.verify import main; main()", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _resign(path: Path, key_dir: Path) -> None:
    """What a forger does: edit, recompute the digest, sign with a key of its own (or the deployment's, an insider)."""
    from fedunlearn.experiment import signing
    from fedunlearn.experiment.certificate import DIGEST, SIGNATURE, canonical, certificate_digest

    cert = json.loads(path.read_text())
    cert[DIGEST] = certificate_digest(cert)
    key = signing.load_or_create(key_dir)
    pem = signing.public_pem(key.public_key())
    cert[SIGNATURE] = {"algorithm": "ed25519", "public_key": pem, "key": signing.fingerprint(pem),
                       "value": signing.sign(key, canonical(cert, (SIGNATURE,)))}  # fmt: skip
    path.write_text(json.dumps(cert, indent=2))


def test_a_certificate_is_signed_by_the_deployments_key_kept_outside_the_run(finished: Path) -> None:
    cert = json.loads((finished / "certificate-1.json").read_text())
    keys = Path(os.environ["FEDUNLEARN_KEY_DIR"])
    assert cert["signature"]["algorithm"] == "ed25519" and (keys / "signing-key.pem").stat().st_mode & 0o777 == 0o600
    assert not list(finished.rglob("signing-key*"))  # the key is not in the run directory
    assert cert["history_chain"]["rounds"] == 4 and len(cert["history_chain"]["head"]) == 64
    ok = _verify("--public-key", str(keys / "signing-key.pub.pem"), "--recompute", str(finished / "certificate-1.json"))
    assert ok.returncode == 0 and "evidence re-evaluated" in ok.stdout, ok.stderr


def _chain_without(run_dir: Path, round_: int) -> None:
    chain = run_dir / "history" / "chain.jsonl"
    lines = [line for line in chain.read_text().splitlines() if json.loads(line)["round"] != round_]
    chain.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (lambda d, k: (d / "history" / "round_00002" / "client_00003.safetensors").write_bytes(b"\0" * 80),
         "history file round_00002/client_00003.safetensors of round 2 is not the one recorded"),
        (lambda d, k: _chain_without(d, 2), "history chain broken at entry 2 (round 3): a round before it was removed"),
        (lambda d, k: _chain_without(d, 4), "the history chain has 3 rounds, the certificate pins 4"),
        (lambda d, k: (d / "models" / "federaser.safetensors").write_bytes((d / "models" / "retrain.safetensors")
                                                                          .read_bytes()),
         "model after federaser"),
        (lambda d, k: _resign(d / "certificate-1.json", k / "forger"), "not issued by that deployment"),
    ],
    ids=["history-file", "removed-round", "removed-last-round", "swapped-model", "forged-certificate"],
)  # fmt: skip
def test_each_kind_of_tampering_fails_verification_in_one_line(
    finished: Path, tmp_path: Path, tamper: Any, says: str
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    tamper(run_dir, tmp_path)
    public = Path(os.environ["FEDUNLEARN_KEY_DIR"]) / "signing-key.pub.pem"
    proc = _verify("--public-key", str(public), str(run_dir / "certificate-1.json"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "FAILED" in lines[0] and says in lines[0], proc.stderr


def test_an_edited_claim_resigned_by_an_insider_fails_the_recomputation(finished: Path, tmp_path: Path) -> None:
    """Even with the deployment's own key, a certificate whose evidence says what the models do not fails
    ``--recompute``, which evaluates the models again."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    path = run_dir / "certificate-1.json"
    cert = json.loads(path.read_text())
    cert["methods"]["federaser"]["evidence"]["backdoor_asr"] = 0.0123
    path.write_text(json.dumps(cert))
    _resign(path, Path(os.environ["FEDUNLEARN_KEY_DIR"]))
    assert _verify(str(path)).returncode == 0  # digest and signature hold: the key holder signed it
    proc = _verify("--recompute", str(path))
    assert proc.returncode == 1 and "model after federaser: backdoor_asr is" in proc.stderr
    assert "the certificate says 0.0123" in proc.stderr


def test_recomputing_evidence_from_reference_models_reads_them_from_the_cache(tmp_path: Path) -> None:
    """A run with ``evaluation.references``: ``--recompute`` fits LiRA again on the cached reference models and
    matches the certificate; without them in the cache, one line names what is missing (it trains nothing)."""
    from fedunlearn.app.compose import config_container
    from fedunlearn.app.verify import recompute_evidence

    overrides = [*TINY, "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,fedaccum]",
                 "evaluation.references=2", f"evaluation.references_cache={tmp_path / 'cache'}"]  # fmt: skip
    run_dir = tmp_path / "run"
    results = run_in_process(make_config(*overrides), run_dir)
    (run_dir / "results.json").write_text(json.dumps({**results, "config": config_container(overrides)}))
    cert = json.loads((run_dir / "certificate-1.json").read_text())
    assert cert["methods"]["fedaccum"]["evidence"]["retrain_z_p"] is not None
    assert recompute_evidence(cert, run_dir) == []
    cert["methods"]["fedaccum"]["evidence"]["retrain_z"] += 0.5
    (edited,) = recompute_evidence(cert, run_dir)
    assert edited.startswith("model after fedaccum: retrain_z is ")
    shutil.rmtree(tmp_path / "cache")
    (problem,) = recompute_evidence(cert, run_dir)
    assert (
        problem.startswith("cannot recompute the evidence from reference models (lira_auc, ")
        and str(tmp_path / "cache") in problem
        and "4 of the 4 reference models are not in" in problem
    )
