"""`python -m api` runs the `jiuzhu` command line."""

from api.cli import main

main()
