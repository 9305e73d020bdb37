"""The federation's data: each client's partition (backdoor applied) and the central test set."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import numpy as np

from fedunlearn.config import BackdoorConfig, DatasetConfig, PartitionConfig
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
    dataset: DatasetConfig, partition: PartitionConfig, backdoor: BackdoorConfig, num_clients: int, seed: int
) -> FederatedData:
    splits = load_dataset(dataset, seed)
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
        backdoor_test = triggered_test_set(splits.test, backdoor.target_label, backdoor.trigger_size, value)
    return FederatedData(
        train=train,
        test=splits.test,
        partitions=tuple(parts),
        poisoned=poisoned,
        num_classes=splits.num_classes,
        backdoor_test=backdoor_test,
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
    )


def federated_data(
    dataset: DatasetConfig, partition: PartitionConfig, backdoor: BackdoorConfig, num_clients: int, seed: int
) -> FederatedData:
    """Build (once per process: clients and server share the recipe, not the arrays) the federation's data."""
    key = json.dumps(
        {
            "dataset": asdict(dataset),
            "partition": asdict(partition),
            "backdoor": asdict(backdoor),
            "num_clients": num_clients,
            "seed": seed,
        },
        sort_keys=True,
    )
    return _cached(key)
