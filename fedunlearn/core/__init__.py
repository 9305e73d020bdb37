"""Federated learning without Flower: model parameters and their arithmetic (params), a client's local training
(task), the interface through which a round reaches the clients and what it costs (federation), and FedAvg rounds
over it (fedavg). The Flower glue (``fedunlearn.flower``) implements the interface; everything above uses it."""
