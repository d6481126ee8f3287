"""`python -m geomas.cli`: the same entry point as the `geomas` console script."""

from geomas.cli import main

main()
