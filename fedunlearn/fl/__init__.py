"""Federated training on Flower's Message API and simulation engine (Ray)."""
