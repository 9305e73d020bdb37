"""The federation's data: each client's partition (backdoor applied) and the central test set."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import numpy as np

from fedunlearn.config import BackdoorConfig, Config, DatasetConfig, PartitionConfig
from fedunlearn.data.backdoor import choose_poisoned, poison, triggered_test_set
from fedunlearn.data.datasets import ArrayDataset, load_dataset
from fedunlearn.data.partition import partition_indices


@dataclass(frozen=True)
class FederatedData:
    """Training samples as clients hold them (poisoned where backdoored) and the clean test set."""

    train: ArrayDataset
    test: ArrayDataset
    partitions: tuple[np.ndarray, ...]
    poisoned: np.ndarray  # bool mask over train
    num_classes: int
    backdoor_test: ArrayDataset | None  # triggered test inputs with true label != target
    server: ArrayDataset  # unlabeled server-held inputs (labels kept only for checks), not in test

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.train.x.shape[1:])

    @property
    def num_clients(self) -> int:
        return len(self.partitions)

    def client(self, cid: int) -> ArrayDataset:
        return self.train.subset(self.partitions[cid])

    def clients(self, cids: list[int]) -> ArrayDataset:
        if not cids:
            return self.train.subset(np.zeros(0, dtype=np.int64))
        return self.train.subset(np.concatenate([self.partitions[c] for c in cids]))


def _build(
    dataset: DatasetConfig,
    partition: PartitionConfig,
    backdoor: BackdoorConfig,
    num_clients: int,
    seed: int,
    server_samples: int,
) -> FederatedData:
    splits = load_dataset(dataset, seed)
    if server_samples >= len(splits.test):
        raise ValueError(f"unlearning.kd.server_samples={server_samples} leaves no test set ({len(splits.test)})")
    held_out = np.arange(len(splits.test))
    server, test = splits.test.subset(held_out[:server_samples]), splits.test.subset(held_out[server_samples:])
    parts = partition_indices(splits.train.y, partition, num_clients, seed)
    train = splits.train
    poisoned = np.zeros(len(train), dtype=bool)
    backdoor_test = None
    if backdoor.clients:
        value = float(train.x.max())
        chosen = [
            choose_poisoned(parts[cid], backdoor.fraction, np.random.default_rng([seed, 7919, cid]))
            for cid in sorted(backdoor.clients)
        ]
        idx = np.concatenate(chosen)
        train = poison(train, idx, backdoor.target_label, backdoor.trigger_size, value)
        poisoned[idx] = True
        backdoor_test = triggered_test_set(test, backdoor.target_label, backdoor.trigger_size, value)
    return FederatedData(
        train=train,
        test=test,
        partitions=tuple(parts),
        poisoned=poisoned,
        num_classes=splits.num_classes,
        backdoor_test=backdoor_test,
        server=server,
    )


@functools.lru_cache(maxsize=2)
def _cached(key: str) -> FederatedData:
    spec = json.loads(key)
    return _build(
        DatasetConfig(**spec["dataset"]),
        PartitionConfig(**spec["partition"]),
        BackdoorConfig(**spec["backdoor"]),
        spec["num_clients"],
        spec["seed"],
        spec["server_samples"],
    )


def federated_data(cfg: Config) -> FederatedData:
    """Build (once per process: clients and server share the recipe, not the arrays) the federation's data."""
    key = json.dumps(
        {
            "dataset": asdict(cfg.dataset),
            "partition": asdict(cfg.partition),
            "backdoor": asdict(cfg.backdoor),
            "num_clients": cfg.fl.num_clients,
            "seed": cfg.seed,
            "server_samples": cfg.unlearning.kd.server_samples,
        },
        sort_keys=True,
    )
    return _cached(key)
