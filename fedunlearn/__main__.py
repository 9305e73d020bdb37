"""``python -m fedunlearn``: the same Hydra app as the ``fedunlearn`` command."""

from fedunlearn.app.cli import cli

if __name__ == "__main__":
    cli()
