"""Published protocols, reproduced side by side: the paper's figure next to fedunlearn's, mean ± std over seeds.

    python benchmarks/reproduce.py                                  # both protocols, seeds 0 1 2, full settings
    python benchmarks/reproduce.py --protocols pga_paper --rounds 3 # a CPU-sized variant: only the rounds change
    python benchmarks/reproduce.py --device cuda --workers 6        # on a GPU machine, the seeds side by side

Each (protocol, seed) is one run of ``fedunlearn experiment=<protocol> seed=<seed>`` executed in-process (the
ClientApp's own training through ``LocalTrainer``, no Ray: the same updates as through Flower, on ``--device``),
written under ``--out``/runs. The paper's figures (../shared/PROTOCOLS.md, read from the authors' saved outputs) are
printed beside fedunlearn's under the paper's own metric definitions, computed from the saved models:

* pga_paper (Halimi et al.; IBM/federated-unlearning): "clean" = test accuracy on the whole test set; "backdoor"
  = share of *all* test images predicted as the target when every image of another class carries the trigger (the
  target's own images stay clean, so a clean model scores about 10%). "PGA alone" is PGA without its post-training
  round, run on the same trained model and history.
* crab_paper (Jiang et al.; shenjiyuan123/Adaptive_Recovery): "test accuracy" on the standard test set (the authors
  use the benign clients' 25% held-out splits of train+test merged); "ASR" = share of the malicious clients' own
  triggered training samples (target class excluded) predicted as the target, as the authors' code computes it.

The published figures are MNIST's (PGA) and Fashion-MNIST's (Crab); runs here use Fashion-MNIST unless
``--override dataset=mnist dataset.root=...``: compare the pattern (who is within how many points of retrain).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._measure import machine, write_outputs  # noqa: E402

# (row, what it is in fedunlearn, paper clean/accuracy %, paper backdoor/ASR %)
PAPER: dict[str, list[tuple[str, str, float, float]]] = {
    "pga_paper": [
        ("FedAvg after 10 rounds (poisoned)", "before", 98.29, 85.88),
        ("retrain without party 0", "retrain", 98.47, 10.02),
        ("PGA alone", "pga_alone", 65.80, 0.00),
        ("PGA + 1 post-training round", "pga", 96.90, 11.12),
    ],
    "crab_paper": [
        ("poisoned model", "before", 47.34, 64.1),
        ("retrain", "retrain", 87.45, 2.3),
        ("FedEraser", "federaser", 88.21, 1.4),
        ("Crab", "crab", 88.68, 3.1),
    ],
}
PAPER_DATA = {"pga_paper": "MNIST", "crab_paper": "Fashion-MNIST"}
METRIC_NAMES = {
    "pga_paper": ("clean %", "backdoor % (all test images predicted 9)"),
    "crab_paper": ("test accuracy %", "ASR % (malicious clients' triggered training samples)"),
}


@dataclass(frozen=True)
class Job:
    protocol: str
    seed: int
    overrides: tuple[str, ...]
    runs: Path
    device: str
    threads: int


def _paper_metrics(protocol: str, cfg: Any, data: Any, params: Any) -> tuple[float, float]:
    """(clean or test accuracy, backdoor or ASR) in percent, as the paper defines them."""
    import torch

    from fedunlearn.core.params import set_params
    from fedunlearn.core.task import predict_logits
    from fedunlearn.data.backdoor import add_trigger
    from fedunlearn.models import build_model

    model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)
    set_params(model, params)
    device = torch.device(cfg.evaluation.device)
    b = cfg.backdoor
    value = float(data.train.x.max())

    def predict(x: np.ndarray) -> np.ndarray:
        return np.argmax(predict_logits(model, x, cfg.evaluation.batch_size, device), axis=1)

    clean = float(np.mean(predict(data.test.x) == data.test.y))
    if protocol == "pga_paper":
        x = data.test.x.copy()
        other = data.test.y != b.target_label
        x[other] = add_trigger(x[other], b.trigger_size, value, b.trigger)
        backdoor = float(np.mean(predict(x) == b.target_label))
    else:
        cids = sorted(b.clients)
        own = np.concatenate([data.partitions[c] for c in cids])
        poisoned = own[data.poisoned[own]]
        backdoor = float(np.mean(predict(data.train.x[poisoned]) == b.target_label))
    return 100 * clean, 100 * backdoor


def run_job(job: Job) -> dict[str, Any]:
    """One (protocol, seed): the run, then the paper's metrics of every model it made (an error comes back as a
    RuntimeError carrying its traceback: the original may not pickle across processes)."""
    try:
        return _run_job(job)
    except Exception:
        import traceback

        raise RuntimeError(f"{job.protocol} seed {job.seed} failed:\n{traceback.format_exc()}") from None


def _run_job(job: Job) -> dict[str, Any]:
    import torch

    torch.set_num_threads(job.threads)
    from fedunlearn.app.compose import compose_config
    from fedunlearn.core.federation import LocalTrainer
    from fedunlearn.core.task import TaskConfig
    from fedunlearn.data import federated_data
    from fedunlearn.evaluation import Evaluator
    from fedunlearn.experiment import run_experiment
    from fedunlearn.experiment.checkpoint import RunCheckpoint, load_params
    from fedunlearn.experiment.stages import Experiment, unlearn
    from fedunlearn.history import HistoryStore
    from fedunlearn.results import to_json

    overrides = [f"experiment={job.protocol}", f"seed={job.seed}", f"evaluation.device={job.device}", *job.overrides]
    cfg = compose_config(overrides)
    run_dir = job.runs / f"{job.protocol}-seed{job.seed}"
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    trainer = LocalTrainer(TaskConfig.from_config(cfg), cfg.fl.max_client_failures, job.device)
    t0 = time.perf_counter()
    results = to_json(run_experiment(cfg, trainer, run_dir))
    wall = time.perf_counter() - t0
    data = federated_data(cfg)
    models = {"before": load_params(run_dir / "models" / "trained.safetensors")}
    models.update({m: load_params(run_dir / "models" / f"{m}.safetensors") for m in results["unlearning"]})
    if job.protocol == "pga_paper":  # PGA without its post-training round, on the same trained model and history
        alone_cfg = compose_config([*overrides, "unlearning.pga.post_rounds=0"])
        evaluator = Evaluator(alone_cfg, data, sorted(alone_cfg.forget.clients))
        store = HistoryStore.open(run_dir / alone_cfg.history.dir)
        exp = Experiment(
            cfg=alone_cfg, trainer=trainer, run_dir=run_dir, data=data, store=store,
            ckpt=RunCheckpoint(run_dir, alone_cfg), test=evaluator.test,
        )  # fmt: skip
        _, models["pga_alone"] = unlearn(exp, "pga", evaluator, models["before"])
    paper = {name: _paper_metrics(job.protocol, cfg, data, params) for name, params in models.items()}
    own = {"before": results["before_unlearning"]["metrics"]}
    own.update({m: r["metrics"] for m, r in results["unlearning"].items()})
    costs = {m: {k: r[k] for k in ("wall_s", "client_epochs")} for m, r in results["unlearning"].items()}
    return {
        "protocol": job.protocol,
        "seed": job.seed,
        "wall_s": wall,
        "paper_metrics": paper,
        "fedunlearn_metrics": {
            k: {"test_accuracy": v["test_accuracy"], "backdoor_asr": v["backdoor_asr"]} for k, v in own.items()
        },
        "costs": costs,
        "training_wall_s": results["training"]["wall_s"],
    }


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f}"


def table(protocol: str, runs: list[dict[str, Any]], label: str) -> str:
    """The paper's figure beside fedunlearn's (mean ± sample std over the seeds), each model a row."""
    clean, backdoor = METRIC_NAMES[protocol]
    seeds = sorted(r["seed"] for r in runs)
    lines = [
        f"### {protocol}: {label}; seeds {seeds} (n = {len(seeds)}), mean ± std",
        "",
        f"Paper: {PAPER_DATA[protocol]} (its published figures); fedunlearn: this run's data set.",
        "",
        f"| model | paper {clean} | fedunlearn {clean} | paper {backdoor} | fedunlearn {backdoor} |",
        "|---|---:|---:|---:|---:|",
    ]
    for row, key, p_clean, p_backdoor in PAPER[protocol]:
        got = [r["paper_metrics"][key] for r in runs if key in r["paper_metrics"]]
        lines.append(
            f"| {row} | {p_clean:.2f} | {_mean_std([g[0] for g in got])} | {p_backdoor:.2f} | "
            f"{_mean_std([g[1] for g in got])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="+", default=sorted(PAPER), choices=sorted(PAPER))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=None, help="a CPU-sized variant: only fl.num_rounds changes")
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides (e.g. dataset.root=...)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda: client training and evaluation")
    parser.add_argument("--workers", type=int, default=1, help="runs side by side (processes)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="tables and JSON")
    parser.add_argument("--runs", type=Path, default=Path("outputs/reproduce"), help="the runs' directories")
    args = parser.parse_args(argv)
    extra = tuple(args.override) + ((f"fl.num_rounds={args.rounds}",) if args.rounds else ())
    label = "the paper's settings" if args.rounds is None else f"CPU-sized variant: {args.rounds} rounds (only change)"
    if args.override:
        label += f"; overrides {' '.join(args.override)}"
    threads = max(1, (os.cpu_count() or 1) // max(1, args.workers))
    jobs = [Job(p, s, extra, args.runs, args.device, threads) for p in args.protocols for s in args.seeds]
    suffix = "" if args.rounds is None else f"-rounds{args.rounds}"
    args.out.mkdir(parents=True, exist_ok=True)
    name = "-".join(args.protocols)  # each run as it finishes (a cut-short session keeps them)
    progress = args.out / f"reproduce-runs-{name}{suffix}.jsonl"
    progress.write_text("")
    t0 = time.perf_counter()
    done = []
    with multiprocessing.get_context("spawn").Pool(max(1, args.workers)) as pool:
        for result in pool.imap_unordered(run_job, jobs):
            done.append(result)
            with open(progress, "a") as fh:
                fh.write(json.dumps(result) + "\n")
            print(f"{result['protocol']} seed {result['seed']}: {result['wall_s']:.0f}s", flush=True)
    for protocol in args.protocols:
        runs = [r for r in done if r["protocol"] == protocol]
        text = table(protocol, runs, label)
        print(text + "\n")
        payload = {"machine": machine(), "device": args.device, "label": label, "runs": runs,
                   "wall_s": time.perf_counter() - t0, "date": time.strftime("%Y-%m-%d")}  # fmt: skip
        write_outputs(args.out, f"reproduce-{protocol}{suffix}", payload, text)


if __name__ == "__main__":
    main()
