"""Unlearning certificates: what was forgotten, how, and hashes that tie the claim to the files.

``certificate-<n>.json`` (one per unlearning request) names the forgotten clients, each method with its
parameters and wall time, the SHA-256 of the model before and of each model after, of the history
manifest used (which pins every history file's SHA-256), and the forgetting evidence; ``digest`` is the SHA-256
of every other field, so that an edited claim (clients, evidence, parameters) no longer matches.
``fedunlearn-verify <certificate>`` recomputes the digest, re-hashes the files and re-checks the history against
its manifest. A digest shows the certificate is as written; it does not show who wrote it (anyone who edits it can
recompute it): that needs a signature.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedunlearn.config import Config
from fedunlearn.evaluation import Metrics
from fedunlearn.evaluation.catalog import EVIDENCE
from fedunlearn.experiment.checkpoint import file_sha256
from fedunlearn.history import HistoryStore
from fedunlearn.history.store import HistoryCorruptError
from fedunlearn.history.writer import atomic_write
from fedunlearn.reporting.results import MethodResult, finite

DIGEST = "digest"


def certificate_digest(cert: dict[str, Any]) -> str:
    """SHA-256 of every field but ``digest``, as canonical JSON: sorted keys, no spaces, standard JSON only (no
    NaN), so that any JSON library can recompute it from the file."""
    body = {k: v for k, v in cert.items() if k != DIGEST}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys repeat is refused: other readers may take another of the values than we do."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice")
    return dict(pairs)


def _file(run_dir: Path, path: Path) -> dict[str, str]:
    return {"file": str(path.relative_to(run_dir)), "sha256": file_sha256(path)}


def write_certificate(
    run_dir: Path,
    request: int,
    after_round: int,
    cfg: Config,
    manifest: Path,
    model_before: Path,
    evidence_before: Metrics,
    methods: dict[str, tuple[MethodResult, Path]],
) -> Path:
    """Write ``certificate-<request>.json``; ``methods`` maps each method to (its result, its unlearned model file)."""
    entries: dict[str, Any] = {}
    for name, (result, model_after) in methods.items():
        entries[name] = {
            "parameters": dataclasses.asdict(getattr(cfg.unlearning, name)),
            "wall_s": result.wall_s,
            "client_epochs": result.client_epochs,
            "compute": None if result.compute is None else result.compute.to_json(),
            "bytes": dataclasses.asdict(result.bytes),
            "model_after": _file(run_dir, model_after),
            "evidence": {k: result.metrics.get(k) for k in EVIDENCE},
            "exact": result.exact,
        }
    first = next(iter(methods.values()))[0]
    reference = methods.get("retrain")
    certificate = {
        "request": request,
        "clients": first.clients,
        "after_round": after_round,
        "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": cfg.seed,
        "history": _file(run_dir, manifest),
        "model_before": _file(run_dir, model_before),
        "evidence_before": {k: evidence_before.get(k) for k in EVIDENCE},
        "methods": entries,
        # distances "to retrain" are to an exact reference (null: no retrain in this request)
        "reference_exact": None if reference is None else reference[0].exact is not False,
    }
    certificate = json.loads(json.dumps(finite(certificate)))  # as a reader will see it: str keys, no NaN
    certificate[DIGEST] = certificate_digest(certificate)
    path = run_dir / f"certificate-{request}.json"
    atomic_write(path, json.dumps(certificate, indent=2).encode())
    return path


def verify_certificate(path: Path) -> list[str]:
    """Every mismatch between the certificate and itself or the files beside it (empty: all hashes hold)."""
    try:
        cert = json.loads(Path(path).read_text(), object_pairs_hook=_unique_keys)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return [f"unreadable: {err}"]
    if not isinstance(cert, dict) or DIGEST not in cert:
        return ["it has no digest: its claims cannot be checked (edited, or not written by fedunlearn)"]
    if cert[DIGEST] != certificate_digest(cert):
        return ["its fields were edited after it was written (the digest over them does not match)"]
    run_dir = Path(path).resolve().parent
    pinned = [("history manifest", cert["history"]), ("model before", cert["model_before"])]
    pinned += [(f"model after {name}", m["model_after"]) for name, m in cert["methods"].items()]
    problems = []
    for what, ref in pinned:
        file = run_dir / ref["file"]
        if not file.exists():
            problems.append(f"{what}: {file} is missing")
        elif file_sha256(file) != ref["sha256"]:
            problems.append(f"{what}: {file} does not match the certificate's SHA-256")
    if not problems:  # the manifest is the certified one: check the history files it pins
        manifest = run_dir / cert["history"]["file"]
        try:
            HistoryStore.open(manifest.parent, manifest.name).verify()
        except HistoryCorruptError as err:
            problems.append(str(err))
    return problems


def main(argv: list[str] | None = None) -> None:
    """``fedunlearn-verify CERTIFICATE...``: exit 0 when every hash holds, 1 otherwise (a line per certificate)."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths or any(p in ("-h", "--help") for p in paths):
        print("usage: fedunlearn-verify CERTIFICATE.json...", file=sys.stderr)
        sys.exit(2)
    failed = False
    for p in paths:
        if not Path(p).is_file():
            print(f"{p}: no such certificate", file=sys.stderr)
            failed = True
            continue
        problems = verify_certificate(Path(p))
        if problems:
            failed = True
            print(f"{p}: FAILED: {'; '.join(problems)}", file=sys.stderr)
        else:
            cert = json.loads(Path(p).read_text())
            print(f"{p}: OK (clients {cert['clients']}; {', '.join(cert['methods'])}; history and models match)")
    sys.exit(1 if failed else 0)
