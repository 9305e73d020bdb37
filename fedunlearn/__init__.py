"""fedunlearn: federated unlearning simulator on Flower, Ray, PyTorch and Hydra."""

__version__ = "0.1.0"
