"""Split a training set across clients with flwr-datasets partitioners (IID as IidPartitioner splits it, computed
directly)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fedunlearn.config import ConfigError, PartitionConfig

if TYPE_CHECKING:
    from flwr_datasets.partitioner import Partitioner


def partition_indices(labels: np.ndarray, cfg: PartitionConfig, num_clients: int, seed: int) -> list[np.ndarray]:
    """Indices into ``labels`` of each client's samples; client id = list position. A partitioner that cannot
    split the data this way raises ConfigError naming the key to change."""
    if num_clients > len(labels):
        raise ConfigError(
            "fl.num_clients", f"{num_clients} clients exceed the {len(labels)} training samples; use fewer clients"
        )
    # IidPartitioner cuts contiguous blocks, so the order is shuffled first (seeded).
    order = np.random.default_rng(seed).permutation(len(labels))
    if cfg.name == "iid":
        # IidPartitioner's partitions are Dataset.shard's contiguous shards, the first len % n one row longer:
        # np.array_split's, computed without building a Dataset (tests/test_data.py checks them against it)
        return [part.astype(np.int64) for part in np.array_split(order, num_clients)]
    import datasets
    from flwr_datasets.partitioner import DirichletPartitioner, ShardPartitioner

    table = datasets.Dataset.from_dict({"label": labels[order].tolist(), "index": order.tolist()})
    partitioner: Partitioner
    if cfg.name == "dirichlet":
        assert cfg.alpha is not None and cfg.min_partition_size is not None  # required by validation
        if cfg.min_partition_size * num_clients > len(labels):
            raise ConfigError(
                "partition.min_partition_size",
                f"{cfg.min_partition_size} samples for each of {num_clients} clients exceed the {len(labels)} "
                "training samples",
            )
        partitioner = DirichletPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            alpha=cfg.alpha,
            min_partition_size=cfg.min_partition_size,
            self_balancing=False,
            seed=seed,
        )
    elif cfg.name == "shards":
        assert cfg.shards_per_client is not None  # required by validation
        if cfg.shards_per_client * num_clients > len(labels):
            raise ConfigError(
                "partition.shards_per_client",
                f"{cfg.shards_per_client} shards for each of {num_clients} clients need "
                f"{cfg.shards_per_client * num_clients} shards, more than the {len(labels)} training samples",
            )
        partitioner = ShardPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            num_shards_per_partition=cfg.shards_per_client,
            seed=seed,
        )
    else:
        raise ConfigError("partition.name", f"unknown partition {cfg.name!r}")
    partitioner.dataset = table
    try:
        return _every_partition(partitioner, num_clients)
    except ValueError as err:
        key = {"dirichlet": "partition.alpha", "shards": "partition.shards_per_client"}.get(cfg.name, "fl.num_clients")
        raise ConfigError(key, f"partition={cfg.name} cannot split the data: {str(err).splitlines()[0]}") from err


def _every_partition(partitioner: Partitioner, num_clients: int) -> list[np.ndarray]:
    """Each partition's ``index`` column, as ``partitioner.load_partition(cid)`` gives it, in one pass.

    Loading 10,000 partitions one by one costs about 5 ms each (a Dataset per partition, rows formatted one at
    a time): 50 s at start-up in the driver and again in every client actor. Dirichlet and shard partitioners
    compute every partition's row indices on their first ``load_partition`` and select them from their (possibly
    re-sorted) dataset; those rows are read from that map at once. A partitioner without the map is loaded
    partition by partition. ``tests/test_data.py`` checks the result against ``load_partition``.
    """
    partitioner.load_partition(0)
    rows = getattr(partitioner, "_partition_id_to_indices", None)
    if isinstance(rows, dict) and sorted(rows) == list(range(num_clients)):
        # one slice of the whole column (indexing the column by name iterates it row by row in datasets >= 4)
        index = np.asarray(partitioner.dataset.with_format("numpy")[:]["index"], dtype=np.int64)
        return [index[np.asarray(rows[cid], dtype=np.int64)] for cid in range(num_clients)]
    return one_by_one(partitioner, num_clients)


def one_by_one(partitioner: Partitioner, num_clients: int) -> list[np.ndarray]:
    """Each partition's ``index`` column through flwr-datasets' own ``load_partition``."""
    return [np.asarray(partitioner.load_partition(cid)["index"], dtype=np.int64) for cid in range(num_clients)]
