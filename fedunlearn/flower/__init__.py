"""Flower glue: the ServerApp's ``ClientTrainer`` (server_app), the ClientApp and its wire format (client_app),
the simulation on Ray (simulation, engine) and the process that cleans up after it (reaper)."""
