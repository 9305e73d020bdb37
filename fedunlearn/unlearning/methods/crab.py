"""Crab (Jiang, Shen, Liu, Tan, Lam; arXiv 2401.08216, IEEE TIFS 2025): replay only the important rounds and
clients of the history, each step calibrated, from a model the forgotten clients never touched.

Selection, as the authors' code makes it during training (shenjiyuan123/Adaptive_Recovery @ e899781, ``serverCrab.py``
``train_with_select``, ``select_round``, ``select_client_in_round``), computed here from the stored history and
the losses training recorded (each client's loss of the model it received, ``history.client_stats``; evaluated at
unlearning time if they were not recorded): rounds
are cut into windows that close when the global model's training loss on the remaining clients falls below
(1 − α) × the window's first loss (α = 0.1) or at the last round; in each window the top ``round_ratio`` (0.6) of
its rounds by KL divergence between consecutive global models (softmax over the last axis of each parameter
tensor, summed) are kept — the code attributes the change from model j+1 to j+2 to round j, and so does
fedunlearn — and in each kept round the top ``client_ratio`` (0.7) of its clients by the mean cosine similarity of
their local model to the round's aggregate (weight tensors, row-wise).

Recovery (``adaptive_recover``): for each kept round t, its kept remaining clients train one epoch from the current
model (FedAvg of their models gives newGM), train one more epoch from newGM (newCM), and newGM is calibrated per
tensor with the stored magnitude: newGM += ‖mean_k U_k^t‖ · (mean newCM − newGM)/‖·‖ (equal client weights).
The code restarts every step from the stored poisoned model, so its result depends only on the last kept round
(a bug): fedunlearn chains the steps, starting from the global model of the first round a forgotten client took
part in (nothing before it needs undoing; the paper's adaptive rollback rule could not be read and the code has
none). Needs every round stored (``history.interval=1``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fedunlearn.config import Config, spec
from fedunlearn.core.client_stats import client_stat
from fedunlearn.core.params import Params, add, subtract, weighted_sum
from fedunlearn.core.task import mean_loss
from fedunlearn.history import HistoryStore
from fedunlearn.seeds import client_seed, declare
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome, require_every_round
from fedunlearn.unlearning.calibration import calibrated_step
from fedunlearn.unlearning.registry import register

CALIBRATION = declare("calibration", 1)  # the recovery's calibration training, as FedEraser's
SELECTION = declare("crab selection", 12)  # Crab's selection bookkeeping
RECEIVED_LOSS = client_stat("received_loss", mean_loss)  # each client's loss of the model it received


@dataclass
class CrabHParams:
    loss_drop: float = spec(gt=0.0, lt=1.0)  # α: a window closes when the loss falls below (1 − α) × its start
    round_ratio: float = spec(gt=0.0, le=1.0)  # P: share of each window's rounds kept
    client_ratio: float = spec(gt=0.0, le=1.0)  # X: share of each kept round's clients kept
    epochs: float = spec(gt=0.0)  # local epochs of each of a recovery step's two trainings


def parameter_kl(prior: Params, now: Params) -> float:
    """Σ over parameter tensors of KL(softmax(prior) ‖ softmax(now)), softmax over each tensor's last axis."""
    total = 0.0
    for k in sorted(prior):  # name order: the same sum whatever order the arrays come in
        p, q = torch.from_numpy(prior[k].astype(np.float64)), torch.from_numpy(now[k].astype(np.float64))
        total += float(F.kl_div(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1), reduction="sum"))
    return total


def similarity(aggregate: Params, local: Params) -> float:
    """Mean over weight tensors (ndim > 1) of the mean row-wise (dim 1) cosine similarity of local to aggregate."""
    values = [
        float(torch.cosine_similarity(torch.from_numpy(aggregate[k]), torch.from_numpy(local[k])).mean())
        for k in sorted(aggregate)
        if aggregate[k].ndim > 1
    ]
    return float(np.mean(values))


def select(
    losses: Sequence[float],
    models: Sequence[Params],
    locals_of: Sequence[Mapping[int, Params]],
    loss_drop: float,
    round_ratio: float,
    client_ratio: float,
) -> dict[int, list[int]]:
    """Crab's selection over training iterations i = 0..T: ``losses[i]`` is the loss of ``models[i]`` (the model
    iteration i starts from; ``models[T + 1]`` the final one), ``locals_of[i]`` the clients' models of iteration
    i. Returns kept iteration → kept client ids."""
    last = len(losses) - 1
    kept: dict[int, list[int]] = {}
    window: list[Params] = []
    start, start_loss = 0, losses[0]
    for i in range(last + 1):
        if i > 0:
            window.append(models[i])
        if losses[i] < start_loss * (1 - loss_drop) or i == last:
            if len(window) < 2:
                rounds = [start]
            else:
                kl = [parameter_kl(a, b) for a, b in itertools.pairwise(window)]
                rounds = [start + int(j) for j in np.argsort(kl)[::-1][: int(len(window) * round_ratio)]]
            for r in rounds:
                clients = sorted(locals_of[r])
                scores = [similarity(models[r + 1], locals_of[r][c]) for c in clients]
                order = np.argsort(scores)[::-1][: int(len(clients) * client_ratio)]
                kept[r] = [clients[int(j)] for j in order]
            window, start, start_loss = [], i, losses[i]
    return dict(sorted(kept.items()))


class LocalModels(Mapping[int, Params]):
    """The clients' models of one round (M^t + U_k^t), read from the history only when asked for: the selection
    reads only the kept rounds'."""

    def __init__(self, history: HistoryStore, round_: int, start: Params) -> None:
        self.history, self.round, self.start = history, round_, start

    def __getitem__(self, cid: int) -> Params:
        return add(self.start, self.history.client_update(self.round, cid))

    def __iter__(self) -> Iterator[int]:
        return iter(self.history.participants(self.round))

    def __len__(self) -> int:
        return len(self.history.participants(self.round))


def recorded_losses(history: HistoryStore, forget: list[int]) -> list[float] | None:
    """Each round's loss of the model it started from on the remaining clients, as training recorded it (the
    authors' ``evaluate`` before each round): the sample-weighted mean of the remaining participants' received
    losses. None if a round has none recorded (``history.client_stats``)."""
    gone = set(forget)
    losses = []
    for t in history.rounds():
        recorded = history.client_stats(t, RECEIVED_LOSS)
        if recorded is None:
            return None
        kept = [c for c in history.participants(t) if c not in gone and c in recorded]
        if not kept:
            return None
        sizes = [history.num_examples(t, c) for c in kept]
        losses.append(float(np.dot([recorded[c] for c in kept], sizes) / sum(sizes)))
    return losses


@register("crab")
class Crab(UnlearningMethod[CrabHParams]):
    """Replay only the rounds and clients that mattered most, calibrated, from before the forgotten clients came."""

    client_stats = frozenset({RECEIVED_LOSS})

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_every_round(cfg, self.name)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p, h = self.hparams, ctx.history
        t_select = time.perf_counter()
        rounds = h.rounds()
        models = [h.global_model(t) for t in rounds] + [ctx.trained]
        locals_of = [LocalModels(h, t, models[i]) for i, t in enumerate(rounds)]
        losses, source = recorded_losses(h, ctx.forget), "recorded"
        if losses is None:  # trained without history.client_stats' received_loss: evaluate now, within the wall
            assert ctx.evaluate_remaining is not None
            losses, source = [ctx.evaluate_remaining(m)[1] for m in models[:-1]], "evaluated"
            ctx.clients.charge(client_forward_samples=(len(models) - 1) * ctx.samples_of(ctx.remaining_clients()))
        kept = select(losses, models, locals_of, p.loss_drop, p.round_ratio, p.client_ratio)
        first = h.first_round_of(ctx.forget)
        selection_s = time.perf_counter() - t_select
        outcome = UnlearningOutcome(
            ctx.trained,
            info={"kept_rounds": len(kept), "rollback_round": first, "selection_s": selection_s, "losses": source},
        )
        if first is None:  # the forgotten clients never contributed
            return outcome
        gone = set(ctx.forget)
        replay = [(rounds[i], [c for c in cids if c not in gone]) for i, cids in kept.items() if rounds[i] >= first]
        replay = [(t, cids) for t, cids in replay if cids]
        model = h.global_model(first)
        plan = ctx.plan(p.epochs)
        for j, (t, cids) in enumerate(replay, start=1):
            t0 = time.perf_counter()
            seeds = {c: client_seed(ctx.cfg.seed, CALIBRATION, t, c) for c in cids}
            first_pass = ctx.clients.train(model, seeds, plan, group=f"{self.name}-{t}")
            if not first_pass:
                continue
            sizes = [u.num_examples for u in first_pass]
            new_gm = add(
                model, weighted_sum([subtract(u.params, model) for u in first_pass], [n / sum(sizes) for n in sizes])
            )
            seeds = {u.cid: client_seed(ctx.cfg.seed, SELECTION, t, u.cid) for u in first_pass}
            second = ctx.clients.train(new_gm, seeds, plan, group=f"{self.name}-calibrate-{t}")
            used = [u.cid for u in second]
            if used:
                stored = [h.client_update(t, c) for c in used]
                step = calibrated_step(stored, [subtract(u.params, new_gm) for u in second], [], "layer", "equal")
                new_gm = add(new_gm, step)
            model = new_gm
            ctx.step(outcome.rounds, self.name, j, len(replay), model, t0, used, second)
        outcome.params = model
        outcome.info.update(
            {"replayed_rounds": [t for t, _ in replay], "replayed_updates": sum(len(c) for _, c in replay)}
        )
        return outcome
