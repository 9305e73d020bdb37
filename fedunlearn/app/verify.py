"""``fedunlearn-verify``: check unlearning certificates (``fedunlearn.experiment.certificate``); ``--recompute`` also
evaluates the certified models again with the run's own config and data."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fedunlearn.app.compose import load_config
from fedunlearn.data import federated_data
from fedunlearn.evaluation import Evaluator, lira
from fedunlearn.experiment.certificate import SIGNATURE, verify_certificate
from fedunlearn.experiment.checkpoint import load_params
from fedunlearn.experiment.references import fit_cached
from fedunlearn.unlearning.registry import schema_with_defaults


def recompute_evidence(cert: dict[str, Any], run_dir: Path, tolerance: float = 1e-6) -> list[str]:
    """Evaluate the certificate's models again, with the run's own config and data, and compare with the evidence it
    records (``results.json`` gives the config)."""
    results = run_dir / "results.json"
    if not results.exists():
        return [f"cannot recompute: {results} (the run's config) is missing"]
    merged = OmegaConf.merge(schema_with_defaults(), json.loads(results.read_text())["config"])
    assert isinstance(merged, DictConfig)
    cfg = load_config(merged)
    evaluator = Evaluator(cfg, federated_data(cfg), sorted(cert["clients"]))
    problems = []
    missing = fit_cached(cfg, sorted(cert["clients"]), evaluator) if cfg.evaluation.references > 0 else []
    if missing:
        k2 = 2 * cfg.evaluation.references
        problems.append(
            f"cannot recompute the evidence from reference models ({', '.join(lira.KEYS)}): {len(missing)} of "
            f"the {k2} reference models are not in {missing[0].parent} (evaluation.references_cache of the run)"
        )
    retrain = cert["methods"].get("retrain")
    reference = load_params(run_dir / retrain["model_after"]["file"]) if retrain else None
    recorded = [("model before", cert["model_before"]["file"], cert["evidence_before"])]
    recorded += [(f"model after {n}", m["model_after"]["file"], m["evidence"]) for n, m in cert["methods"].items()]
    for what, file, evidence in recorded:
        fresh = evaluator.evaluate(load_params(run_dir / file), reference)
        for key, value in evidence.items():
            if missing and key in lira.KEYS:
                continue
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
        problems = verify_certificate(Path(p), public_key, recompute_evidence if recompute else None)
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


if __name__ == "__main__":
    main()
