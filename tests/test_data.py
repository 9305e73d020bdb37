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
    trig = triggered_test_set(test, target=0, size=2, value=1.0, shape="square")
    assert list(trig.y) == [1, 2] and trig.x[:, 0, 3, 3].tolist() == [1.0, 1.0]


def test_the_pattern_trigger_is_arts_add_pattern_bd() -> None:
    """ART 1.13 ``add_pattern_bd(x, distance=2, pixel_value=1)`` on a 28×28 image sets (26, 26), (25, 25), (26, 24)
    and (24, 26): written out here, not computed from fedunlearn's table."""
    img = add_trigger(np.zeros((2, 3, 28, 28), np.float32), 0, 1.0, "pattern")
    expected = np.zeros((28, 28), np.float32)
    expected[26, 26] = expected[25, 25] = expected[26, 24] = expected[24, 26] = 1.0
    for n in range(2):
        for c in range(3):
            np.testing.assert_array_equal(img[n, c], expected)


def test_skip_target_poisons_only_the_other_classes() -> None:
    cfg = make_config("backdoor.clients=[1]", "backdoor.fraction=1.0", "backdoor.skip_target=true",
                      "forget.clients=[1]")  # fmt: skip
    data = federated_data(cfg)
    part = data.partitions[1]
    clean = federated_data(make_config())
    own_target = clean.train.y[part] == cfg.backdoor.target_label
    assert own_target.any() and data.poisoned[part].sum() == (~own_target).sum()  # every other sample, none of these
    assert not data.poisoned[part[own_target]].any()


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
        root=None,
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
        normalize=None,
    )
    s = load_dataset(cfg, 0)
    assert s.input_shape == (channels, 8, 8)
    assert len(s.train) == 30 and len(s.test) == 12 and s.num_classes == 4
    assert s.train.x.dtype == np.float32 and s.train.x.max() <= 1.0


# -- the standard local files ----------------------------------------------------------------------------------


def _idx_bytes(values: np.ndarray) -> bytes:
    """``values`` (uint8) in LeCun's IDX format."""
    head = bytes([0, 0, 0x08, values.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in values.shape)
    return head + values.astype(np.uint8).tobytes()


def _write_idx(root: Path, n_train: int, n_test: int, gz: bool, seed: int = 0) -> dict[str, np.ndarray]:
    import gzip

    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, values in arrays.items():
        payload = _idx_bytes(values)
        (root / (f"{name}.gz" if gz else name)).write_bytes(gzip.compress(payload) if gz else payload)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_files_load_as_the_standard_splits(tmp_path: Path, name: str, gz: bool) -> None:
    arrays = _write_idx(tmp_path, 50, 20, gz)
    cfg = make_config(f"dataset={name}", f"dataset.root={tmp_path}").dataset
    s = load_dataset(cfg, 0)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10 and (len(s.train), len(s.test)) == (50, 20)
    np.testing.assert_array_equal(s.train.x[:, 0] * 255, arrays["train-images-idx3-ubyte"].astype(np.float32))
    np.testing.assert_array_equal(s.test.y, arrays["t10k-labels-idx1-ubyte"])
    normed = load_dataset(make_config(f"dataset={name}", f"dataset.root={tmp_path}", "dataset.normalize=[0.5,0.5]")
                          .dataset, 0)  # fmt: skip
    np.testing.assert_allclose(normed.train.x, (s.train.x - 0.5) / 0.5)


def test_a_truncated_idx_file_is_refused(tmp_path: Path) -> None:
    from fedunlearn.data.datasets import read_idx

    (tmp_path / "x").write_bytes(_idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-5])
    with pytest.raises(ValueError, match="is truncated"):
        read_idx(tmp_path / "x")


def _write_cifar(root: Path) -> list[dict[bytes, object]]:
    import pickle

    rng = np.random.default_rng(1)
    root.mkdir()
    batches = []
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072)).astype(np.uint8), b"labels": list(rng.integers(0, 10, 4))}
        batch[b"labels"] = [int(v) for v in batch[b"labels"]]  # type: ignore[union-attr]
        (root / name).write_bytes(pickle.dumps(batch))
        batches.append(batch)
    return batches


def test_cifar10_python_batches_load_and_nothing_else_is_unpickled(tmp_path: Path) -> None:
    import pickle

    batches = _write_cifar(tmp_path / "cifar")
    s = load_dataset(make_config("dataset=cifar10", f"dataset.root={tmp_path / 'cifar'}").dataset, 0)
    assert s.input_shape == (3, 32, 32) and (len(s.train), len(s.test)) == (20, 4)
    first = np.asarray(batches[0][b"data"], np.float32).reshape(4, 3, 32, 32) / 255
    np.testing.assert_allclose(s.train.x[:4], first)
    assert s.test.y.tolist() == batches[-1][b"labels"]

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    (tmp_path / "cifar" / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.print is not allowed"):
        load_dataset(make_config("dataset=cifar10", f"dataset.root={tmp_path / 'cifar'}").dataset, 0)


def test_missing_files_name_the_files_the_root_and_the_package(tmp_path: Path) -> None:
    from fedunlearn.config import ConfigError

    with pytest.raises(ConfigError) as err:
        load_dataset(make_config("dataset=fashion_mnist", f"dataset.root={tmp_path}").dataset, 0)
    text = str(err.value)
    assert text.startswith("dataset.root: fashion_mnist needs train-images-idx3-ubyte[.gz], ")
    assert f"in dataset.root={tmp_path} (none found there)" in text
    assert "apt-get install dataset-fashion-mnist" in text and "dataset.hf_path" in text
