"""The unlearning methods, one module each (and one YAML in ``conf/unlearning/``); ``registry.discover`` imports
every module here."""
