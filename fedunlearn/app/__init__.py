"""The entry points: ``fedunlearn`` (cli), ``flwr run`` (flwr), ``fedunlearn-verify`` (verify); the config composed
once (compose), failures mapped to one line and an exit code (errors), the report stage shared by both runs
(publish)."""
