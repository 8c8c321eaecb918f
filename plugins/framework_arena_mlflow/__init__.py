"""MLflow plugins of framework-arena, registered through entry points in pyproject.toml."""
