"""ZenML steps: thin wrappers around geomas library functions, one per file."""
