"""Original `geomas.core.inference` package."""
