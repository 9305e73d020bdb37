"""Centralised datasets as numpy arrays: digits (bundled), synthetic, and Hugging Face images."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def load_dataset(cfg: DatasetConfig, seed: int) -> DatasetSplits:
    """The train/test splits of the configured dataset (``max_*_samples`` applied), deterministic in ``seed``."""
    if cfg.name == "digits":
        splits = _digits(cfg, seed)
    elif cfg.name == "synthetic":
        splits = _synthetic(cfg, seed)
    elif cfg.name in HF_DATASETS:
        return _huggingface(cfg, seed)
    else:
        raise ConfigError("dataset.name", f"unknown dataset {cfg.name!r}")
    train = _limit(splits.train, cfg.max_train_samples, seed)
    return DatasetSplits(train, _limit(splits.test, cfg.max_test_samples, seed), splits.num_classes)
