"""Split a training set across clients with flwr-datasets partitioners."""

from __future__ import annotations

import numpy as np

from fedunlearn.config import PartitionConfig


def partition_indices(labels: np.ndarray, cfg: PartitionConfig, num_clients: int, seed: int) -> list[np.ndarray]:
    """Indices into ``labels`` of each client's samples; client id = list position."""
    import datasets
    from flwr_datasets.partitioner import (
        DirichletPartitioner,
        IidPartitioner,
        Partitioner,
        ShardPartitioner,
    )

    if num_clients > len(labels):
        raise ValueError(f"fl.num_clients={num_clients} exceeds the {len(labels)} training samples")
    # IidPartitioner cuts contiguous blocks, so the order is shuffled first (seeded).
    order = np.random.default_rng(seed).permutation(len(labels))
    table = datasets.Dataset.from_dict({"label": labels[order].tolist(), "index": order.tolist()})
    partitioner: Partitioner
    if cfg.name == "iid":
        partitioner = IidPartitioner(num_partitions=num_clients)
    elif cfg.name == "dirichlet":
        partitioner = DirichletPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            alpha=cfg.alpha,
            min_partition_size=cfg.min_partition_size,
            self_balancing=False,
            seed=seed,
        )
    elif cfg.name == "shards":
        partitioner = ShardPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            num_shards_per_partition=cfg.shards_per_client,
            seed=seed,
        )
    else:
        raise ValueError(f"unknown partition {cfg.name!r}")
    partitioner.dataset = table
    return [np.asarray(partitioner.load_partition(cid)["index"], dtype=np.int64) for cid in range(num_clients)]
