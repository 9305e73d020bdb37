"""The federation's data: each client's partition (backdoor applied) and the central test set.

Everything that depends on the data is checked here, as it is built; the driver builds it before any client
starts, so a bad value stops the run at once with a ConfigError naming the key.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import numpy as np

from fedunlearn.config import BackdoorConfig, Config, ConfigError, DatasetConfig, PartitionConfig
from fedunlearn.data.backdoor import choose_poisoned, poison, triggered_test_set
from fedunlearn.data.datasets import ArrayDataset, load_dataset
from fedunlearn.data.partition import partition_indices
from fedunlearn.seeds import Stream, rng


@dataclass(frozen=True)
class DataRecipe:
    """What decides the federation's data; every process rebuilds the same data from it."""

    dataset: DatasetConfig
    partition: PartitionConfig
    backdoor: BackdoorConfig
    num_clients: int
    seed: int

    @classmethod
    def from_config(cls, cfg: Config) -> DataRecipe:
        return cls(cfg.dataset, cfg.partition, cfg.backdoor, cfg.fl.num_clients, cfg.seed)

    @functools.cached_property
    def key(self) -> str:  # computed once: asked for by every client a worker trains
        return json.dumps(asdict(self), sort_keys=True)


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


def _check_backdoor(backdoor: BackdoorConfig, num_classes: int, input_shape: tuple[int, ...]) -> None:
    if not backdoor.clients:
        return
    if backdoor.target_label >= num_classes:
        raise ConfigError(
            "backdoor.target_label", f"{backdoor.target_label} is not a class of this dataset (0..{num_classes - 1})"
        )
    if backdoor.trigger == "pattern":
        if len(input_shape) != 3 or min(input_shape[-2:]) < 4:
            raise ConfigError(
                "backdoor.trigger",
                f"pattern needs images of at least 4x4 pixels, not inputs of shape {list(input_shape)}",
            )
        return
    side = min(input_shape[-2:]) if len(input_shape) == 3 else int(np.sqrt(input_shape[0]))
    if backdoor.trigger_size > side:
        raise ConfigError(
            "backdoor.trigger_size",
            f"{backdoor.trigger_size} does not fit the {list(input_shape)} inputs (at most {side})",
        )


def _build(recipe: DataRecipe) -> FederatedData:
    dataset, backdoor, seed = recipe.dataset, recipe.backdoor, recipe.seed
    splits = load_dataset(dataset, seed)
    if dataset.server_samples >= len(splits.test):
        raise ConfigError(
            "dataset.server_samples",
            f"{dataset.server_samples} leaves no test set (the held-out set has {len(splits.test)} samples)",
        )
    held_out = np.arange(len(splits.test))
    server = splits.test.subset(held_out[: dataset.server_samples])
    test = splits.test.subset(held_out[dataset.server_samples :])
    parts = partition_indices(splits.train.y, recipe.partition, recipe.num_clients, seed)
    empty = [c for c, p in enumerate(parts) if len(p) == 0]
    if empty:
        raise ConfigError(
            "fl.num_clients",
            f"{recipe.num_clients} clients leave client(s) {empty[:5]} with no training sample under "
            f"partition={recipe.partition.name} ({len(splits.train)} training samples); use fewer clients",
        )
    _check_backdoor(backdoor, splits.num_classes, splits.input_shape)
    train = splits.train
    poisoned = np.zeros(len(train), dtype=bool)
    backdoor_test = None
    if backdoor.clients:
        value = float(train.x.max())
        candidates = {
            cid: parts[cid][train.y[parts[cid]] != backdoor.target_label] if backdoor.skip_target else parts[cid]
            for cid in sorted(backdoor.clients)
        }
        chosen = [
            choose_poisoned(candidates[cid], backdoor.fraction, rng(seed, Stream.BACKDOOR, cid))
            for cid in sorted(backdoor.clients)
        ]
        idx = np.concatenate(chosen)
        shape = (backdoor.trigger_size, value, backdoor.trigger)
        train = poison(train, idx, backdoor.target_label, *shape)
        poisoned[idx] = True
        backdoor_test = triggered_test_set(test, backdoor.target_label, *shape)
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
        DataRecipe(
            DatasetConfig(**spec["dataset"]),
            PartitionConfig(**spec["partition"]),
            BackdoorConfig(**spec["backdoor"]),
            spec["num_clients"],
            spec["seed"],
        )
    )


def federated_data(recipe: DataRecipe | Config) -> FederatedData:
    """The federation's data, built once per process (clients and server share the recipe, not the arrays)."""
    if isinstance(recipe, Config):
        recipe = DataRecipe.from_config(recipe)
    return _cached(recipe.key)
