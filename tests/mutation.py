"""Mutation testing of the unlearning methods' math: does ``tests/reference`` (with the methods' unit tests) notice
a plausible mistake?

    python tests/mutation.py                 # every mutant (about 9 minutes on 2 cores); the report is printed
    python tests/mutation.py --report FILE   # also written to FILE (benchmarks/results/mutation.md is the last one)
    python tests/mutation.py --only crab     # the mutants of one module

Each mutant changes one thing in ``fedunlearn/unlearning/`` — an operator, a sign, the model a step starts from, a
weight, a stop comparison, a restart choice — in a copy of the package (the working tree is never touched); the
tests below then run against the copy, stopping at the first failure. A mutant is *killed* when a test fails. A
mutant that survives is either a gap in the tests or equivalent (no input tells it apart); the equivalent ones are
marked here with why, and listed in the report and in the README's Fidelity section.
"""

# ruff: noqa: E501 (the mutant table: each mutation is one line of code, quoted whole)
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/reference", "tests/test_method_math.py", "tests/test_calibration.py", "tests/test_unlearning.py"]


@dataclass(frozen=True)
class Mutant:
    module: str  # under fedunlearn/unlearning/ (a method: methods/<name>.py)
    find: str  # must occur exactly once in the module
    replace: str
    what: str
    equivalent: str = ""  # why no test can tell it apart (empty: it must be killed)


U = "fedunlearn/unlearning/"
MUTANTS = [
    # FedEraser, FedAccum and their replay
    Mutant("methods/federaser.py", "replies = ctx.clients.train(params, seeds, plan,",
           "replies = ctx.clients.train(ctx.history.global_model(round_), seeds, plan,",
           "calibration trains from the stored global model M^t, not the unlearned model"),
    Mutant("methods/federaser.py", "outcome.params = add(params, step)", "outcome.params = add(ctx.history.global_model(round_), step)",
           "each step is added to the stored model instead of the unlearned one"),
    Mutant("methods/federaser.py", "epochs = p.calibration_ratio * ctx.cfg.fl.local_epochs", "epochs = ctx.cfg.fl.local_epochs",
           "calibration trains the whole local training, not r of it"),
    Mutant("methods/federaser.py", "[1.0 / len(stored.cids)] * len(stored.cids) if equal else stored.weights", "stored.weights",
           "the first step of granularity=layer uses sample weights, not the code's equal ones"),
    Mutant("calibration.py", "return direction * (magnitude / norm)", "return direction * magnitude",
           "the new direction is not normalised"),
    Mutant("calibration.py", "rescale(flatten(new), float(np.linalg.norm(flatten(old))))",
           "rescale(flatten(new), float(np.linalg.norm(flatten(new))))", "the magnitude is the new update's, not the stored"),
    Mutant("calibration.py", 'if layer_weights == "equal" else list(weights)', 'if layer_weights != "equal" else list(weights)',
           "layer weights swapped (equal ↔ samples)"),
    Mutant("replay.py", 'offset = 0 if alignment == "start" else interval - 1',
           'offset = interval - 1 if alignment == "start" else 0', "alignment start and end swapped"),
    Mutant("replay.py", "return sample_weights(self.num_examples) if self.cids else []",
           "return [1.0 / len(self.cids)] * len(self.cids) if self.cids else []", "p'_k equal instead of sample weights"),
    Mutant("replay.py", "keep = ctx.remaining(round_)", "keep = ctx.history.participants(round_)",
           "the forgotten clients' stored updates are replayed too"),
    # Crab
    Mutant("methods/crab.py", "            t0 = time.perf_counter()\n            seeds = {c: client_seed(ctx.cfg.seed, CALIBRATION,",
           "            t0 = time.perf_counter()\n            model = h.global_model(t)\n"
           "            seeds = {c: client_seed(ctx.cfg.seed, CALIBRATION,",
           "the authors' unchained recovery: every step restarts from the stored poisoned model"),
    Mutant("methods/crab.py", "if losses[i] < start_loss * (1 - loss_drop) or i == last:",
           "if losses[i] > start_loss * (1 - loss_drop) or i == last:", "a window closes while the loss has not fallen"),
    Mutant("methods/crab.py", "rounds = [start + int(j) for j in np.argsort(kl)[::-1][: int(len(window) * round_ratio)]]",
           "rounds = [start + int(j) for j in np.argsort(kl)[: int(len(window) * round_ratio)]]",
           "the rounds with the smallest KL are kept"),
    Mutant("methods/crab.py", "order = np.argsort(scores)[::-1][: int(len(clients) * client_ratio)]",
           "order = np.argsort(scores)[: int(len(clients) * client_ratio)]", "the least similar clients are kept"),
    Mutant("methods/crab.py", "scores = [similarity(models[r + 1], locals_of[r][c]) for c in clients]",
           "scores = [similarity(models[r], locals_of[r][c]) for c in clients]",
           "clients are compared with the round's starting model, not its aggregate"),
    Mutant("methods/crab.py", "weighted_sum([subtract(u.params, model) for u in first_pass], [n / sum(sizes) for n in sizes])",
           "weighted_sum([subtract(u.params, model) for u in first_pass], [1 / len(sizes) for n in sizes])",
           "newGM is an equal-weight mean, not FedAvg"),
    Mutant("methods/crab.py", "model = h.global_model(first)", "model = h.global_model(rounds[0])",
           "recovery starts from the initial model instead of the forgotten clients' first round"),
    Mutant("methods/crab.py", "losses.append(float(np.dot([recorded[c] for c in kept], sizes) / sum(sizes)))",
           "losses.append(float(np.mean([recorded[c] for c in kept])))", "round loss is an unweighted mean"),
    # SIFU
    Mutant("methods/sifu.py", "psi[t, j] += (p / (1 - p) if p < 1 else 1.0) * distances[c]",
           "psi[t, j] += (p if p < 1 else 1.0) * distances[c]", "sensitivity increment p·d instead of p/(1 − p)·d"),
    Mutant("methods/sifu.py", "admissible = int(np.nonzero(psi <= bound)[0].max())",
           "admissible = int(np.nonzero(psi <= bound)[0].min())", "restart from the first admissible model, not the last"),
    Mutant("methods/sifu.py", "psi = sensitivities(steps, sorted(ctx.forget)).max(axis=1)",
           "psi = sensitivities(steps, sorted(ctx.forget)).min(axis=1)", "Ψ of a request is the min over its clients"),
    Mutant("methods/sifu.py", "restart = h.global_model(rounds[admissible]) if admissible < len(rounds) else ctx.trained",
           "restart = h.global_model(rounds[max(0, admissible - 1)]) if admissible < len(rounds) else ctx.trained",
           "restart one round earlier than admissible"),
    Mutant("methods/sifu.py", "noise.normal(0.0, p.sigma, v.shape)", "noise.normal(0.0, 2 * p.sigma, v.shape)",
           "restart noise twice as large"),
    Mutant("methods/sifu.py", "distances = {cids[0]: global_move(h, rounds, i, ctx.trained)}",
           "distances = {cids[0]: 0.0}", "a forgotten client alone in its round adds nothing"),
    # PGA
    Mutant("methods/pga.py", "(-loss_fn(model(x[idx]), y[idx])).backward()", "loss_fn(model(x[idx]), y[idx]).backward()",
           "descent instead of ascent"),
    Mutant("methods/pga.py", "        if norm > radius:\n", "        if norm < radius:\n", "projection when inside the ball"),
    Mutant("methods/pga.py", "reference = _mean([add(start, ctx.history.client_update(last, c)) for c in others]) if others else start",
           "reference = _mean([add(start, ctx.history.client_update(last, c)) for c in cids]) if others else start",
           "w_ref includes the leaving client"),
    Mutant("methods/pga.py", "return float((_vector(model) - target).norm() ** 2) > self.hparams.distance_threshold",
           "return float((_vector(model) - target).norm() ** 2) < self.hparams.distance_threshold",
           "the distance stop compares the wrong way"),
    Mutant("methods/pga.py", "return float(np.sqrt(fraction * np.mean(squared_distances)))",
           "return float(fraction * np.sqrt(np.mean(squared_distances)))", "radius = fraction × RMS (the audit's misreading)"),
    # FedRecover
    Mutant("methods/fedrecover.py", "g = stored[c] - buf.hvp(shift)", "g = stored[c] + buf.hvp(shift)", "the estimate's sign"),
    Mutant("methods/fedrecover.py", "if float(np.max(np.abs(g))) > tau:", "if float(np.max(np.abs(g))) < tau:",
           "abnormality comparison reversed"),
    Mutant("methods/fedrecover.py", "tau_global = p.tau_factor * max((self._tau_t(ctx, t) for t in rounds), default=0.0)",
           "tau_global = p.tau_factor * min((self._tau_t(ctx, t) for t in rounds), default=0.0)", "τ = min_t τ_t"),
    Mutant("methods/fedrecover.py", "buffers.setdefault(reply.cid, PairBuffer(p.buffer_size)).add(shift, stored[reply.cid] - g)",
           "buffers.setdefault(reply.cid, PairBuffer(p.buffer_size)).add(shift, g - stored[reply.cid])",
           "curvature pair with the wrong sign"),
    Mutant("methods/fedrecover.py", "scheduled = index <= p.warmup_rounds or", "scheduled = index < p.warmup_rounds or",
           "warm-up one round short"),
    Mutant("methods/fedrecover.py", "weights = sample_weights([ctx.history.num_examples(t, c) for c in used])",
           "weights = [1.0 / len(used)] * len(used)", "equal client weights"),
    # PUF, NoT, FedQUIT
    Mutant("methods/puf.py", "return weighted_sum([d for d, _ in leaving], [-eta * n / total for _, n in leaving])",
           "return weighted_sum([d for d, _ in leaving], [eta * n / total for _, n in leaving])",
           "special: the update is added, not negated"),
    Mutant("methods/puf.py", "    total = sum(n for _, n in leaving) + sum(n for _, n in remaining)\n",
           "    total = sum(n for _, n in remaining)\n", "regular: N without the leaving clients"),
    Mutant("methods/puf.py", "leaving_replies = ctx.clients.train(w, seeds, ctx.plan(p.epochs), group)",
           "leaving_replies = ctx.clients.train(w, seeds, ctx.plan(1.0), group)",
           "the leaving clients train one epoch whatever training's clients train"),
    Mutant("methods/fednot.py", "names = [k for k, v in params.items() if v.ndim >= 2 and v.dtype.kind == \"f\"][:layers]",
           "names = [k for k, v in params.items() if v.ndim >= 2 and v.dtype.kind == \"f\"][-layers:]",
           "the last weight tensor is negated, not the first"),
    Mutant("methods/fedquit.py", "return logits.scatter(1, labels[:, None], logits.min(dim=1, keepdim=True).values)",
           "return logits.scatter(1, labels[:, None], logits.max(dim=1, keepdim=True).values)",
           "the true-class logit becomes the largest"),
    Mutant("methods/fedquit.py", "return F.kl_div(F.log_softmax(student / tau, dim=1), target, reduction=\"batchmean\")",
           "return F.kl_div(F.log_softmax(student, dim=1), target, reduction=\"batchmean\")",
           "the student's softmax without the temperature"),
    Mutant("methods/fedquit.py", "adopted: Params = weighted_sum(students, [n / sum(sizes) for n in sizes])",
           "adopted: Params = weighted_sum(students, [1 / len(sizes) for n in sizes])",
           "several leaving clients' students averaged with equal weights"),
    # FUKD, kd_recover
    Mutant("methods/kd.py", "return add(ctx.trained, weighted_sum(contributions, weights), scale=-1.0), len(contributions)",
           "return add(ctx.trained, weighted_sum(contributions, weights), scale=1.0), len(contributions)",
           "the forgotten updates are added, not subtracted"),
    Mutant("methods/kd.py", "                contributions.append(ctx.history.client_update(t, c))\n                weights.append(w)",
           "                contributions.append(ctx.history.client_update(t, c))\n"
           "                weights.append(1.0 / len(cids))", "p_u^t equal instead of the client's FedAvg weight"),
    Mutant("methods/kd.py", "loss = F.kl_div(log_probs, soft_targets[idx], reduction=\"batchmean\") * p.temperature**2",
           "loss = F.kl_div(log_probs, soft_targets[idx], reduction=\"batchmean\")", "no T² factor"),
    Mutant("methods/kd.py", "torch.nn.utils.clip_grad_norm_(student.parameters(), p.max_grad_norm)",
           "torch.nn.utils.clip_grad_norm_(student.parameters(), 2 * p.max_grad_norm)", "clipping at twice the norm"),
    # FedRecovery
    Mutant("residual.py", "    kept_w = w[keep] / w[keep].sum()\n", "    kept_w = w[keep]\n",
           "the aggregate without u is not renormalised"),
    Mutant("residual.py", "sq = np.array([float(g @ g) for g in global_updates])",
           "sq = np.array([float(np.sqrt(g @ g)) for g in global_updates])", "p_t from ‖ΔF_t‖, not ‖ΔF_t‖²"),
    Mutant("residual.py", "return sensitivity * math.sqrt(2.0 * math.log(1.25 / beta)) / epsilon",
           "return sensitivity * math.sqrt(2.0 * math.log(1.25 / beta)) * epsilon", "σ multiplied by ε"),
    # recovery rounds, exact references
    Mutant("base.py", "pool = self.remaining_clients()", "pool = list(range(self.cfg.fl.num_clients))",
           "recovery rounds sample the forgotten clients too"),
    Mutant("base.py", "plan = dataclasses.replace(self.plan(max_grad_norm=max_grad_norm), max_steps=max_steps)",
           "plan = self.plan(max_grad_norm=max_grad_norm)", "the post-training cap is ignored"),
    Mutant("methods/retrain.py", "schedule = [(t, ctx.remaining(t)) for t in rounds]",
           "schedule = [(t, ctx.history.participants(t)) for t in rounds]", "retrain keeps the forgotten clients"),
    Mutant("methods/rollback.py", "start = max(r for r in ctx.history.rounds_stored() if r <= first)",
           "start = min(r for r in ctx.history.rounds_stored() if r <= first)", "rollback restarts from the first round"),
]  # fmt: skip


def apply(copy: Path, mutant: Mutant) -> None:
    path = copy / U / mutant.module
    text = path.read_text()
    count = text.count(mutant.find)
    if count != 1:
        raise ValueError(f"{mutant.module}: the text to mutate occurs {count} times: {mutant.find[:60]!r}")
    path.write_text(text.replace(mutant.find, mutant.replace))


def run(copy: Path, timeout: float) -> tuple[bool, str]:
    """Whether the tests fail against the copy (the mutant is killed), and the first failing test."""
    env = {**os.environ, "PYTHONPATH": f"{copy}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS]
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True, "timeout"
    failed = next((line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))), "")
    return proc.returncode != 0, failed


def imported_from(copy: Path) -> str:
    """Where the tests' ``import fedunlearn`` finds the package (it must be the copy, not the installed one)."""
    env = {**os.environ, "PYTHONPATH": f"{copy}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = "import fedunlearn.unlearning.methods.crab as m; print(m.__file__)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True
    ).stdout.strip()


def workspace(tmp: Path) -> Path:
    """A copy of the package, its configuration and the tests: a snapshot, whatever changes in the tree meanwhile."""
    copy = tmp / "repo"
    shutil.copytree(ROOT / "fedunlearn", copy / "fedunlearn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(ROOT / "conf", copy / "fedunlearn" / "conf", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="the mutants of this module (e.g. crab)")
    parser.add_argument("--report", type=Path, help="also write the report here")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.only is None or Path(m.module).stem == args.only]
    rows, killed, t0 = [], 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        copy = workspace(Path(tmp))
        where = imported_from(copy)
        if not where.startswith(str(copy)):
            print(f"the tests would import fedunlearn from {where}, not from the mutated copy", file=sys.stderr)
            return 2
        for mutant in chosen:  # every mutant applies to exactly one place
            original = (copy / U / mutant.module).read_text()
            apply(copy, mutant)
            (copy / U / mutant.module).write_text(original)
        baseline, first = run(copy, args.timeout)
        if baseline:
            print(f"the tests fail without any mutant ({first}): fix them first", file=sys.stderr)
            return 2
        for i, mutant in enumerate(chosen, start=1):
            original = (copy / U / mutant.module).read_text()
            try:
                apply(copy, mutant)
                dead, test = run(copy, args.timeout)
            finally:
                (copy / U / mutant.module).write_text(original)
            killed += dead
            verdict = (
                f"killed by {test or 'a failing test'}" if dead else ("equivalent" if mutant.equivalent else "SURVIVED")
            )
            print(f"[{i}/{len(chosen)}] {mutant.module}: {mutant.what}: {verdict}", flush=True)
            rows.append((mutant, dead, test))
        broken, first = run(copy, args.timeout)  # the unmutated copy must still pass, or every "kill" is suspect
        if broken:
            print(f"the tests fail on the unmutated copy after the run ({first}): the report is void", file=sys.stderr)
            return 2
    survivors = [(m, t) for m, dead, t in rows if not dead]
    lines = [
        f"# Mutation testing of fedunlearn/unlearning ({time.strftime('%Y-%m-%d')}, `python tests/mutation.py`)",
        "",
        f"Tests: {', '.join(TESTS)}. **{killed} of {len(rows)} mutants killed ({100 * killed / len(rows):.0f}%)**, "
        f"{time.perf_counter() - t0:.0f} s.",
        "",
        "| module | mutant | result |",
        "|---|---|---|",
    ]
    for mutant, dead, test in rows:
        result = (
            f"killed (`{test}`)"
            if dead and test
            else ("killed" if dead else f"**survived**: {mutant.equivalent or 'a gap'}")
        )
        lines.append(f"| {mutant.module} | {mutant.what} | {result} |")
    if survivors:
        lines += ["", "Survivors: " + "; ".join(f"{m.module}: {m.what} ({m.equivalent or 'not yet explained'})"
                                              for m, _ in survivors)]  # fmt: skip
    report = "\n".join(lines) + "\n"
    print(report)
    if args.report:
        args.report.write_text(report)
    unexplained = [m for m, _ in survivors if not m.equivalent]
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
