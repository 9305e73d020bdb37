"""Centralised datasets as numpy arrays: digits (bundled), synthetic, MNIST / Fashion-MNIST / CIFAR-10 from their
standard local files (no torchvision, no network), and Hugging Face images."""

from __future__ import annotations

import gzip
import math
import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fedunlearn.config import HF_DATASETS, ConfigError, DatasetConfig
from fedunlearn.seeds import Stream, rng

HUB = ("huggingface.co", 443)


@dataclass(frozen=True)
class ArrayDataset:
    """Inputs ``x`` (float32, N × shape) and integer labels ``y`` (int64, N)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        return ArrayDataset(self.x[indices], self.y[indices])


@dataclass(frozen=True)
class DatasetSplits:
    train: ArrayDataset
    test: ArrayDataset
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.train.x.shape[1:])


def _limit(ds: ArrayDataset, limit: int | None, seed: int) -> ArrayDataset:
    """A seeded random subset of at most ``limit`` samples (all when ``limit`` is None)."""
    if limit is None or limit >= len(ds):
        return ds
    return ds.subset(np.sort(rng(seed, Stream.SUBSAMPLE, limit).permutation(len(ds))[:limit]))


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(1, round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return ArrayDataset(x[train], y[train]), ArrayDataset(x[test], y[test])


def _digits(cfg: DatasetConfig, seed: int) -> DatasetSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    y = np.asarray(bunch.target, dtype=np.int64)
    assert cfg.test_fraction is not None
    train, test = _split(x, y, cfg.test_fraction, seed)
    return DatasetSplits(train, test, num_classes=10)


def _synthetic(cfg: DatasetConfig, seed: int) -> DatasetSplits:
    """Gaussian classes around random means ``class_sep`` apart; flat or image-shaped."""
    assert cfg.num_samples and cfg.num_classes and cfg.shape and cfg.class_sep is not None
    assert cfg.test_fraction is not None
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in cfg.shape)
    dim = int(np.prod(shape))
    means = rng.normal(0.0, 1.0, size=(cfg.num_classes, dim)).astype(np.float32)
    means *= cfg.class_sep / np.sqrt(dim)
    y = rng.integers(0, cfg.num_classes, size=cfg.num_samples).astype(np.int64)
    x = means[y] + rng.normal(0.0, 1.0 / np.sqrt(dim), size=(cfg.num_samples, dim)).astype(np.float32)
    x = x.reshape((cfg.num_samples, *shape)).astype(np.float32)
    train, test = _split(x, y, cfg.test_fraction, seed)
    return DatasetSplits(train, test, num_classes=cfg.num_classes)


def _images_to_array(images: list[Any]) -> np.ndarray:
    """PIL images or arrays (H×W or H×W×C, uint8) to float32 N×C×H×W in [0, 1]."""
    arr = np.stack([np.asarray(img) for img in images]).astype(np.float32) / 255.0
    if arr.ndim == 3:
        return arr[:, None, :, :]
    return np.transpose(arr, (0, 3, 1, 2)).copy()


def _hf_split(ds: Any, cfg: DatasetConfig, limit: int | None, seed: int) -> ArrayDataset:
    if limit is not None and limit < len(ds):
        ds = ds.shuffle(seed=seed).select(range(limit))
    x = _images_to_array(ds[cfg.image_key])
    y = np.asarray(ds[cfg.label_key], dtype=np.int64)
    return ArrayDataset(x, y)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers on this machine (``HF_ENDPOINT`` is honoured)."""
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT")
    host, port = (urlparse(endpoint).hostname or HUB[0], urlparse(endpoint).port or 443) if endpoint else HUB
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _hub_cached(path: str) -> bool:
    """Whether a copy of hub dataset ``path`` lies in the local Hugging Face caches."""
    name = path.replace("/", "___")
    roots = [Path(os.environ.get("HF_DATASETS_CACHE", Path.home() / ".cache/huggingface/datasets"))]
    roots.append(Path(os.environ.get("HF_HUB_CACHE", Path.home() / ".cache/huggingface/hub")))
    return (roots[0] / name).exists() or (roots[1] / f"datasets--{path.replace('/', '--')}").exists()


def _huggingface(cfg: DatasetConfig, seed: int) -> DatasetSplits:
    """Load an image classification dataset (hub id or local directory) with its train/test splits."""
    import datasets

    assert cfg.hf_path and cfg.image_key and cfg.label_key  # required by validation
    local = Path(cfg.hf_path).expanduser().is_dir()
    if not local and not _hub_cached(cfg.hf_path) and not hub_reachable():
        raise ConfigError(
            "dataset.hf_path",
            f"{cfg.hf_path!r} is not a local directory nor a cached dataset, and the Hugging Face Hub cannot be "
            "reached from this machine; dataset=digits and dataset=synthetic work offline, or point "
            "dataset.hf_path at a local copy",
        )
    try:
        dd = datasets.load_dataset(str(Path(cfg.hf_path).expanduser()) if local else cfg.hf_path)
    except Exception as err:  # the datasets library raises many types; the first line says what went wrong
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError("dataset.hf_path", f"cannot load {cfg.hf_path!r}: {first}") from err
    if "train" not in dd or "test" not in dd:
        raise ConfigError("dataset.hf_path", f"{cfg.hf_path} must have 'train' and 'test' splits, found {list(dd)}")
    for key in ("image_key", "label_key"):
        column = getattr(cfg, key)
        if column not in dd["train"].column_names:
            raise ConfigError(
                f"dataset.{key}", f"{column!r} is not a column of {cfg.hf_path}; columns: {dd['train'].column_names}"
            )
    train = _hf_split(dd["train"], cfg, cfg.max_train_samples, seed)
    test = _hf_split(dd["test"], cfg, cfg.max_test_samples, seed)
    num_classes = int(max(train.y.max(), test.y.max())) + 1
    return DatasetSplits(train, test, num_classes=num_classes)


# -- the standard local files ------------------------------------------------------------------------------------

IDX_FILES = {  # split → (images, labels), as LeCun's MNIST and Zalando's Fashion-MNIST ship them
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
WHERE_FROM = {  # what provides a dataset's files, for the one-line error
    "fashion_mnist": "Debian's package dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`) installs them "
    "in /usr/share/datasets/fashion-mnist",
    "mnist": "the four files of http://yann.lecun.com/exdb/mnist/ (or a mirror), gzipped or not",
    "cifar10": "cifar-10-python.tar.gz of https://www.cs.toronto.edu/~kriz/cifar.html, unpacked",
}


def _missing(cfg: DatasetConfig, looked_for: list[str]) -> ConfigError:
    return ConfigError(
        "dataset.root",
        f"{cfg.name} needs {', '.join(looked_for)} in dataset.root={cfg.root} (none found there); "
        f"{WHERE_FROM[cfg.name]}; or set dataset.hf_path to load it from Hugging Face",
    )


def _idx_file(root: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``root``, whichever is there."""
    return next((p for p in (root / name, root / f"{name}.gz") if p.is_file()), None)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's format: magic 0x0000 08 <dims>, big-endian sizes, unsigned bytes), gzipped or not."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != math.prod(shape):
        raise ValueError(f"{path} is truncated: {data.size} values for shape {list(shape)}")
    return data.reshape(shape)


def _idx_dataset(cfg: DatasetConfig) -> DatasetSplits:
    assert cfg.root is not None
    root = Path(cfg.root).expanduser()
    wanted = [name for pair in IDX_FILES.values() for name in pair]
    paths = {name: _idx_file(root, name) for name in wanted}
    absent = [f"{name}[.gz]" for name, p in paths.items() if p is None]
    if absent:
        raise _missing(cfg, absent)
    splits = []
    for images, labels in IDX_FILES.values():
        x = read_idx(paths[images])  # type: ignore[arg-type]
        y = read_idx(paths[labels]).astype(np.int64)  # type: ignore[arg-type]
        if x.ndim != 3 or y.shape != (x.shape[0],):
            raise ConfigError("dataset.root", f"{paths[images]} and {paths[labels]} do not match")
        splits.append(ArrayDataset((x[:, None, :, :] / np.float32(255.0)).astype(np.float32), y))
    return DatasetSplits(splits[0], splits[1], num_classes=10)


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR-10's python batches are pickles; this admits only what they hold (dicts, lists, bytes and numpy
    arrays), so that a file that is not one cannot run code."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
         ("numpy._core.multiarray", "_reconstruct")}
    )  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> ArrayDataset:
    with open(path, "rb") as fh:
        batch = _CifarUnpickler(fh, encoding="bytes").load()
    x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return ArrayDataset((x / np.float32(255.0)).astype(np.float32), np.asarray(batch[b"labels"], dtype=np.int64))


def _cifar10(cfg: DatasetConfig) -> DatasetSplits:
    assert cfg.root is not None
    root = Path(cfg.root).expanduser()
    absent = [name for name in CIFAR_FILES if not (root / name).is_file()]
    if absent:
        raise _missing(cfg, absent)
    parts = [_cifar_batch(root / name) for name in CIFAR_FILES[:-1]]
    train = ArrayDataset(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))
    return DatasetSplits(train, _cifar_batch(root / CIFAR_FILES[-1]), num_classes=10)


def _normalize(splits: DatasetSplits, mean_std: list[float] | None) -> DatasetSplits:
    """(x − mean) / std on every channel, as torchvision's Normalize((mean,), (std,)) (None: as loaded, in [0, 1])."""
    if mean_std is None:
        return splits
    mean, std = np.float32(mean_std[0]), np.float32(mean_std[1])

    def norm(ds: ArrayDataset) -> ArrayDataset:
        return ArrayDataset((ds.x - mean) / std, ds.y)

    return DatasetSplits(norm(splits.train), norm(splits.test), splits.num_classes)


def load_dataset(cfg: DatasetConfig, seed: int) -> DatasetSplits:
    """The train/test splits of the configured dataset (``max_*_samples`` applied), deterministic in ``seed``."""
    if cfg.name == "digits":
        splits = _digits(cfg, seed)
    elif cfg.name == "synthetic":
        splits = _synthetic(cfg, seed)
    elif cfg.name in HF_DATASETS and cfg.hf_path is not None:
        return _normalize(_huggingface(cfg, seed), cfg.normalize)
    elif cfg.name == "cifar10":
        splits = _cifar10(cfg)
    elif cfg.name in HF_DATASETS:
        splits = _idx_dataset(cfg)
    else:
        raise ConfigError("dataset.name", f"unknown dataset {cfg.name!r}")
    splits = _normalize(splits, cfg.normalize)
    train = _limit(splits.train, cfg.max_train_samples, seed)
    return DatasetSplits(train, _limit(splits.test, cfg.max_test_samples, seed), splits.num_classes)
