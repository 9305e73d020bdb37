"""Unlearning certificates: what was forgotten, how, and what ties the claim to the files and to its issuer.

``certificate-<n>.json`` (one per unlearning request) names the forgotten clients, each method with its
parameters, wall time and costs, the SHA-256 of the model before and of each model after, of the history manifest
used (which pins every history file's SHA-256), the head of the history's hash chain at the request (its round and
hash: a round removed or replaced before it breaks every later hash), and the forgetting evidence. ``digest`` is the
SHA-256 of every other field; ``signature`` is the deployment's Ed25519 signature of the certificate with its digest
(``fedunlearn.experiment.signing``), with the public key it verifies under.

``fedunlearn-verify`` (``fedunlearn.app.verify``) checks the digest, the signature (against ``--public-key``, the
deployment's key, when given; else against the key the certificate carries, which shows it was not edited since it
was signed, not by whom), the chain up to the pinned head, and every file's SHA-256; ``--recompute`` also
re-evaluates the recorded evidence from the stored models and the data, and fails where it differs. What none of
this shows: that the training the history records happened as recorded (a server that lies while training), nor
that the unlearning did more than its evidence measures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedunlearn.config import Config
from fedunlearn.evaluation import Metrics
from fedunlearn.evaluation.catalog import EVIDENCE
from fedunlearn.experiment import signing
from fedunlearn.experiment.checkpoint import file_sha256
from fedunlearn.history import HistoryStore
from fedunlearn.history.store import CHAIN, HistoryCorruptError, codec_of, verify_chain
from fedunlearn.history.writer import atomic_write
from fedunlearn.results import MethodResult, encode, finite

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
            "compute": encode(result.compute),
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
        "history_codec": codec_of(json.loads(manifest.read_text())).describe(),
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


Recompute = Callable[[dict[str, Any], Path], list[str]]  # (certificate, run directory) → problems


def verify_certificate(path: Path, public_key: str | None = None, recompute: Recompute | None = None) -> list[str]:
    """Every problem with the certificate: its digest, its signature (against ``public_key``, a PEM, when given),
    the history chain up to its pinned head, every file's SHA-256, and, when the files hold, ``recompute``'s
    problems (``fedunlearn-verify --recompute`` evaluates the models again). Empty: it holds."""
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
    if recompute is not None and not problems:
        problems += recompute(cert, run_dir)
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
