"""Datasets, partitioning across clients and backdoor poisoning."""

from fedunlearn.data.datasets import ArrayDataset, DatasetSplits, load_dataset
from fedunlearn.data.federated import DataRecipe, FederatedData, federated_data

__all__ = ["ArrayDataset", "DataRecipe", "DatasetSplits", "FederatedData", "federated_data", "load_dataset"]
