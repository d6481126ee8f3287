"""ZenML pipeline definitions."""
