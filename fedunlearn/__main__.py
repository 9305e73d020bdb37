"""``python -m fedunlearn``: the same Hydra app as the ``fedunlearn`` command."""

from fedunlearn.app import main

if __name__ == "__main__":
    main()
