from pathlib import Path

import numpy as np
import pytest

from fedunlearn.config import DatasetConfig, PartitionConfig
from fedunlearn.data.backdoor import add_trigger, triggered_test_set
from fedunlearn.data.datasets import ArrayDataset, load_dataset
from fedunlearn.data.federated import federated_data
from fedunlearn.data.partition import partition_indices
from tests.conftest import make_config


def test_digits_is_bundled_and_split_by_seed() -> None:
    cfg = make_config().dataset
    a, b, c = load_dataset(cfg, 0), load_dataset(cfg, 0), load_dataset(cfg, 1)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert len(a.train) + len(a.test) == 1797
    assert a.train.x.min() >= 0.0 and a.train.x.max() <= 1.0
    np.testing.assert_array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.test.y, c.test.y)


def test_synthetic_flat_and_image_shaped() -> None:
    cfg = make_config("dataset=synthetic", "dataset.num_samples=300", "dataset.shape=[2,6,6]").dataset
    s = load_dataset(cfg, 0)
    assert s.input_shape == (2, 6, 6) and len(s.train) + len(s.test) == 300
    flat = make_config("dataset=synthetic", "dataset.shape=[20]").dataset
    assert load_dataset(flat, 0).input_shape == (20,)


def test_max_samples_subsample_every_dataset() -> None:
    full = load_dataset(make_config("dataset=synthetic").dataset, 0)
    cfg = make_config("dataset=synthetic", "dataset.max_train_samples=100", "dataset.max_test_samples=50").dataset
    small, again = load_dataset(cfg, 0), load_dataset(cfg, 0)
    assert (len(small.train), len(small.test)) == (100, 50)
    np.testing.assert_array_equal(small.train.y, again.train.y)
    assert {tuple(row) for row in small.train.x.reshape(100, -1)} <= {tuple(r) for r in full.train.x.reshape(-1, 64)}
    digits = load_dataset(make_config("dataset.max_train_samples=10").dataset, 0)
    assert len(digits.train) == 10


@pytest.mark.parametrize("name", ["iid", "dirichlet", "shards"])
def test_partitions_are_disjoint_and_cover_the_data(name: str) -> None:
    labels = np.random.default_rng(0).integers(0, 10, 1000)
    cfg = PartitionConfig(name=name, alpha=0.5, shards_per_client=2, min_partition_size=5)
    parts = partition_indices(labels, cfg, 10, seed=3)
    every = np.concatenate(parts)
    assert len(parts) == 10 and len(set(every.tolist())) == len(every)
    if name != "shards":  # shards may leave an incomplete last shard unassigned
        assert len(every) == 1000
    again = partition_indices(labels, cfg, 10, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(parts, again, strict=True))


@pytest.mark.parametrize("name", ["iid", "dirichlet", "shards"])
@pytest.mark.parametrize("num_clients", [7, 30])
def test_every_partition_in_one_pass_is_what_load_partition_gives(
    name: str, num_clients: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-pass split (10,000 clients in well under a second) equals flwr-datasets' load_partition, client by
    client, including unequal sizes (1,003 samples over 7 or 30 clients)."""
    import datasets
    from flwr_datasets.partitioner import IidPartitioner

    from fedunlearn.data import partition

    labels = np.random.default_rng(1).integers(0, 10, 1003)
    cfg = PartitionConfig(name=name, alpha=0.5, shards_per_client=2, min_partition_size=5)
    fast = partition_indices(labels, cfg, num_clients, seed=4)
    if name == "iid":  # contiguous blocks of the seeded shuffle
        iid = IidPartitioner(num_clients)
        iid.dataset = datasets.Dataset.from_dict({"index": np.random.default_rng(4).permutation(1003).tolist()})
        reference = partition.one_by_one(iid, num_clients)
    else:
        monkeypatch.setattr(partition, "_every_partition", partition.one_by_one)
        reference = partition_indices(labels, cfg, num_clients, seed=4)
    assert [x.tolist() for x in fast] == [y.tolist() for y in reference]


def test_dirichlet_skews_labels() -> None:
    labels = np.repeat(np.arange(10), 100)
    cfg = PartitionConfig(name="dirichlet", alpha=0.1, shards_per_client=2, min_partition_size=5)
    parts = partition_indices(labels, cfg, 10, seed=0)
    majority = [np.bincount(labels[p], minlength=10).max() / len(p) for p in parts]
    assert np.mean(majority) > 0.4  # IID would give about 0.1-0.2


def test_trigger_on_images_and_flat_inputs() -> None:
    img = add_trigger(np.zeros((1, 1, 4, 4), np.float32), 2, 1.0)
    assert img[0, 0, 2:, 2:].sum() == 4 and img.sum() == 4
    flat = add_trigger(np.zeros((1, 10), np.float32), 2, 1.0)
    assert flat[0, -4:].sum() == 4 and flat.sum() == 4
    test = ArrayDataset(np.zeros((3, 1, 4, 4), np.float32), np.array([0, 1, 2]))
    trig = triggered_test_set(test, target=0, size=2, value=1.0)
    assert list(trig.y) == [1, 2] and trig.x[:, 0, 3, 3].tolist() == [1.0, 1.0]


def test_backdoored_clients_poison_their_share() -> None:
    cfg = make_config("backdoor.clients=[1]", "backdoor.fraction=0.5", "forget.clients=[1]")
    data = federated_data(cfg)
    part = data.partitions[1]
    assert data.poisoned[part].sum() == round(0.5 * len(part))
    assert data.poisoned.sum() == data.poisoned[part].sum()
    assert (data.train.y[data.poisoned] == cfg.backdoor.target_label).all()
    assert data.backdoor_test is not None and (data.backdoor_test.y != cfg.backdoor.target_label).all()


def _write_local_image_dataset(root: Path, channels: int) -> None:
    """A Hugging Face style image dataset on disk (parquet files per split), like mnist's."""
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 12)):
        shape = (8, 8) if channels == 1 else (8, 8, 3)
        images = [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(n)]
        ds = datasets.Dataset.from_dict({"image": images, "label": [i % 4 for i in range(n)]})
        ds = ds.cast_column("image", datasets.Image())
        ds.to_parquet(str(root / f"{split}.parquet"))


@pytest.mark.parametrize("channels", [1, 3])
def test_huggingface_loader_on_local_data(tmp_path: Path, channels: int) -> None:
    _write_local_image_dataset(tmp_path, channels)
    cfg = DatasetConfig(
        name="mnist",
        hf_path=str(tmp_path),
        image_key="image",
        label_key="label",
        test_fraction=None,
        num_samples=None,
        num_classes=None,
        shape=None,
        class_sep=None,
        max_train_samples=30,
        max_test_samples=None,
        server_samples=0,
    )
    s = load_dataset(cfg, 0)
    assert s.input_shape == (channels, 8, 8)
    assert len(s.train) == 30 and len(s.test) == 12 and s.num_classes == 4
    assert s.train.x.dtype == np.float32 and s.train.x.max() <= 1.0
