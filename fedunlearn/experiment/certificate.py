"""Unlearning certificates: what was forgotten, how, and what ties the claim to the files and to its issuer.

``certificate-<n>.json`` (one per unlearning request) names the forgotten clients, each method with its
parameters, wall time and costs, the SHA-256 of the model before and of each model after, of the history manifest
used (which pins every history file's SHA-256), the head of the history's hash chain at the request (its round and
hash: a round removed or replaced before it breaks every later hash), and the forgetting evidence. ``digest`` is the
SHA-256 of every other field; ``signature`` is the deployment's Ed25519 signature of the certificate with its digest
(``fedunlearn.experiment.signing``), with the public key it verifies under.

``fedunlearn-verify`` checks the digest, the signature (against ``--public-key``, the deployment's key, when given;
else against the key the certificate carries, which shows it was not edited since it was signed, not by whom),
the chain up to the pinned head, and every file's SHA-256; ``--recompute`` also re-evaluates the recorded evidence
from the stored models and the data, and fails where it differs. What none of this shows: that the training the
history records happened as recorded (a server that lies while training), nor that the unlearning did more than its
evidence measures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedunlearn.config import Config
from fedunlearn.evaluation import Metrics
from fedunlearn.evaluation.catalog import EVIDENCE
from fedunlearn.experiment import signing
from fedunlearn.experiment.checkpoint import file_sha256
from fedunlearn.history import HistoryStore
from fedunlearn.history.store import CHAIN, HistoryCorruptError, verify_chain
from fedunlearn.history.writer import atomic_write
from fedunlearn.reporting.results import MethodResult, finite

DIGEST, SIGNATURE = "digest", "signature"


def canonical(cert: dict[str, Any], without: tuple[str, ...]) -> bytes:
    """The certificate without ``without`` as canonical JSON: sorted keys, no spaces, standard JSON only (no NaN),
    so that any JSON library can reproduce the bytes from the file."""
    body = {k: v for k, v in cert.items() if k not in without}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True).encode()


def certificate_digest(cert: dict[str, Any]) -> str:
    """SHA-256 of every field but ``digest`` and ``signature``."""
    return "sha256:" + hashlib.sha256(canonical(cert, (DIGEST, SIGNATURE))).hexdigest()


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
    chain: tuple[int, str] | None = None,
) -> Path:
    """Write ``certificate-<request>.json``; ``methods`` maps each method to (its result, its unlearned model file);
    ``chain``: the history chain's head at the request (rounds, hash)."""
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
        "history_chain": None
        if chain is None
        else {
            "file": str((manifest.parent / CHAIN).relative_to(run_dir)),
            "rounds": chain[0],
            "head": chain[1],
        },
        "model_before": _file(run_dir, model_before),
        "evidence_before": {k: evidence_before.get(k) for k in EVIDENCE},
        "methods": entries,
        # distances "to retrain" are to an exact reference (null: no retrain in this request)
        "reference_exact": None if reference is None else reference[0].exact is not False,
    }
    certificate = json.loads(json.dumps(finite(certificate)))  # as a reader will see it: str keys, no NaN
    certificate[DIGEST] = certificate_digest(certificate)
    if cfg.certificate.sign:
        key = signing.load_or_create(Path(cfg.certificate.key_dir))
        pem = signing.public_pem(key.public_key())
        certificate[SIGNATURE] = {"algorithm": "ed25519", "public_key": pem, "key": signing.fingerprint(pem),
                                  "value": signing.sign(key, canonical(certificate, (SIGNATURE,)))}  # fmt: skip
    path = run_dir / f"certificate-{request}.json"
    atomic_write(path, json.dumps(certificate, indent=2).encode())
    return path


def verify_certificate(path: Path, public_key: str | None = None, recompute: bool = False) -> list[str]:
    """Every problem with the certificate: its digest, its signature (against ``public_key``, a PEM, when given),
    the history chain up to its pinned head, every file's SHA-256, and with ``recompute`` its evidence against a
    fresh evaluation of the models. Empty: it holds."""
    try:
        cert = json.loads(Path(path).read_text(), object_pairs_hook=_unique_keys)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return [f"unreadable: {err}"]
    if not isinstance(cert, dict) or DIGEST not in cert:
        return ["it has no digest: its claims cannot be checked (edited, or not written by fedunlearn)"]
    if cert[DIGEST] != certificate_digest(cert):
        return ["its fields were edited after it was written (the digest over them does not match)"]
    problems = _signature_problems(cert, public_key)
    run_dir = Path(path).resolve().parent
    pinned = [("history manifest", cert["history"]), ("model before", cert["model_before"])]
    pinned += [(f"model after {name}", m["model_after"]) for name, m in cert["methods"].items()]
    for what, ref in pinned:
        file = run_dir / ref["file"]
        if not file.exists():
            problems.append(f"{what}: {file} is missing")
        elif file_sha256(file) != ref["sha256"]:
            problems.append(f"{what}: {file} does not match the certificate's SHA-256")
    chain = cert.get("history_chain")
    if chain is not None:
        problems += verify_chain((run_dir / chain["file"]).parent, chain["rounds"], chain["head"])
    if not problems:  # the manifest is the certified one: check the history files it pins
        manifest = run_dir / cert["history"]["file"]
        try:
            HistoryStore.open(manifest.parent, manifest.name).verify()
        except HistoryCorruptError as err:
            problems.append(str(err))
    if recompute and not problems:
        problems += recompute_evidence(cert, run_dir)
    return problems


def _signature_problems(cert: dict[str, Any], public_key: str | None) -> list[str]:
    signature = cert.get(SIGNATURE)
    if signature is None:
        return ["it is not signed"] if public_key is not None else []
    key = public_key or signature.get("public_key", "")
    if public_key is not None and signing.fingerprint(public_key) != signature.get("key"):
        return [f"it was signed with key {signature.get('key')}, not with the given public key "
                f"{signing.fingerprint(public_key)}: not issued by that deployment"]  # fmt: skip
    if not signing.verify(key, canonical(cert, (SIGNATURE,)), str(signature.get("value", ""))):
        return ["its signature does not verify: forged, or edited after it was signed"]
    return []


def recompute_evidence(cert: dict[str, Any], run_dir: Path, tolerance: float = 1e-6) -> list[str]:
    """Evaluate the certificate's models again, with the run's own config and data, and compare with the evidence it
    records (``results.json`` gives the config)."""
    from omegaconf import DictConfig, OmegaConf

    from fedunlearn.app import load_config
    from fedunlearn.data import federated_data
    from fedunlearn.evaluation import Evaluator
    from fedunlearn.experiment.checkpoint import load_params

    results = run_dir / "results.json"
    if not results.exists():
        return [f"cannot recompute: {results} (the run's config) is missing"]
    from fedunlearn.unlearning.registry import discover, schema_with_defaults

    discover()
    merged = OmegaConf.merge(schema_with_defaults(), json.loads(results.read_text())["config"])
    assert isinstance(merged, DictConfig)
    cfg = load_config(merged)
    evaluator = Evaluator(cfg, federated_data(cfg), sorted(cert["clients"]))
    retrain = cert["methods"].get("retrain")
    reference = load_params(run_dir / retrain["model_after"]["file"]) if retrain else None
    recorded = [("model before", cert["model_before"]["file"], cert["evidence_before"])]
    recorded += [(f"model after {n}", m["model_after"]["file"], m["evidence"]) for n, m in cert["methods"].items()]
    problems = []
    for what, file, evidence in recorded:
        fresh = evaluator.evaluate(load_params(run_dir / file), reference)
        for key, value in evidence.items():
            again = fresh.get(key)
            if value is None and again is None:
                continue
            if value is None or again is None or not math.isclose(value, again, rel_tol=tolerance, abs_tol=tolerance):
                problems.append(f"{what}: {key} is {again} when evaluated again, the certificate says {value}")
    return problems


USAGE = "usage: fedunlearn-verify [--public-key KEY.pub.pem] [--recompute] CERTIFICATE.json..."


def main(argv: list[str] | None = None) -> None:
    """``fedunlearn-verify [--public-key PEM] [--recompute] CERTIFICATE...``: exit 0 when every certificate holds,
    1 otherwise (a line per certificate), 2 on a usage error."""
    args = list(sys.argv[1:] if argv is None else argv)
    public_key, recompute = None, "--recompute" in args
    args = [a for a in args if a != "--recompute"]
    if "--public-key" in args:
        at = args.index("--public-key")
        if at + 1 >= len(args) or not Path(args[at + 1]).is_file():
            print(f"fedunlearn-verify: --public-key needs a PEM file; {USAGE}", file=sys.stderr)
            sys.exit(2)
        public_key = Path(args[at + 1]).read_text()
        del args[at : at + 2]
    paths = args
    if not paths or any(p.startswith("-") for p in paths):
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    failed = False
    for p in paths:
        if not Path(p).is_file():
            print(f"{p}: no such certificate", file=sys.stderr)
            failed = True
            continue
        problems = verify_certificate(Path(p), public_key, recompute)
        if problems:
            failed = True
            print(f"{p}: FAILED: {'; '.join(problems)}", file=sys.stderr)
        else:
            cert = json.loads(Path(p).read_text())
            signed = f"signed by key {cert[SIGNATURE]['key']}" if SIGNATURE in cert else "not signed"
            again = "; evidence re-evaluated" if recompute else ""
            print(f"{p}: OK (clients {cert['clients']}; {', '.join(cert['methods'])}; history chain, history and "
                  f"models match; {signed}{again})")  # fmt: skip
    sys.exit(1 if failed else 0)
