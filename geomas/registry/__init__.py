"""MLflow registered models: logging model folders, versions, aliases."""
