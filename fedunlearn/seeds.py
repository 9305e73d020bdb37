"""Every random stream of a run, in one place.

A run is a pure function of ``seed``: each use of randomness draws from its own stream, named here, so that
changing one (say, PGA's ascent order) never shifts another (say, which clients drop out). Values are unique
(``tests/test_seeds.py``); TRAINING, CALIBRATION and BACKDOOR keep the values of earlier releases.
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np


@unique
class Stream(IntEnum):
    TRAINING = 0  # clients' shuffling in federated training; retrain and rollback replay it
    CALIBRATION = 1  # FedEraser's calibration training
    SAMPLING = 2  # which clients train in each round
    DROPOUT = 3  # which sampled clients drop out (fl.dropout_rate)
    PGA_ASCENT = 4  # PGA: order of the leaving clients' samples in the ascent
    RECOVERY = 5  # sampling and shuffling of extra FL rounds after an unlearning step (PGA, finetune, ...)
    NOISE = 6  # Gaussian noise (FedRecovery, SIFU)
    DISTILL = 7  # KD: order of the server's samples
    BACKDOOR = 7919  # which samples a backdoored client poisons (the value of earlier releases, so results reproduce)
    SUBSAMPLE = 9  # dataset.max_train_samples / max_test_samples
    RANDOM_MODELS = 10  # PGA: the random initialisations that set its radius
    UNLEARN_CLIENT = 11  # local training of a leaving client inside a method (PUF, FedQUIT)
    SELECTION = 12  # Crab's selection bookkeeping
    REFERENCE = 13  # the training seeds of evaluation.references' federations (model initialisation, clients' SGD)


def rng(seed: int, stream: Stream, *more: int) -> np.random.Generator:
    """A numpy generator for ``stream`` (and optional sub-keys such as a round or client id)."""
    return np.random.default_rng([seed, int(stream), *more])


def client_seed(seed: int, stream: Stream, round_: int, cid: int) -> int:
    """A client's shuffling seed for one round of ``stream``; retraining replays TRAINING exactly."""
    return int(np.random.SeedSequence([seed, int(stream), round_, cid]).generate_state(1)[0])


def torch_seed(seed: int, stream: Stream) -> int:
    """A seed for a ``torch.Generator`` of ``stream``."""
    return int(np.random.SeedSequence([seed, int(stream)]).generate_state(1)[0])
