__version__ = "0.1.0"  # the one source: pyproject reads it, as do --version and `version --json`
