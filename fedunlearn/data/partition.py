"""Split a training set across clients with flwr-datasets partitioners."""

from __future__ import annotations

import numpy as np

from fedunlearn.config import ConfigError, PartitionConfig


def partition_indices(labels: np.ndarray, cfg: PartitionConfig, num_clients: int, seed: int) -> list[np.ndarray]:
    """Indices into ``labels`` of each client's samples; client id = list position. A partitioner that cannot
    split the data this way raises ConfigError naming the key to change."""
    import datasets
    from flwr_datasets.partitioner import (
        DirichletPartitioner,
        IidPartitioner,
        Partitioner,
        ShardPartitioner,
    )

    if num_clients > len(labels):
        raise ConfigError(
            "fl.num_clients", f"{num_clients} clients exceed the {len(labels)} training samples; use fewer clients"
        )
    # IidPartitioner cuts contiguous blocks, so the order is shuffled first (seeded).
    order = np.random.default_rng(seed).permutation(len(labels))
    table = datasets.Dataset.from_dict({"label": labels[order].tolist(), "index": order.tolist()})
    partitioner: Partitioner
    if cfg.name == "iid":
        partitioner = IidPartitioner(num_partitions=num_clients)
    elif cfg.name == "dirichlet":
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
        return [np.asarray(partitioner.load_partition(cid)["index"], dtype=np.int64) for cid in range(num_clients)]
    except ValueError as err:
        key = {"dirichlet": "partition.alpha", "shards": "partition.shards_per_client"}.get(cfg.name, "fl.num_clients")
        raise ConfigError(key, f"partition={cfg.name} cannot split the data: {str(err).splitlines()[0]}") from err
