"""geomas."""
