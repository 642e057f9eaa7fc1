"""`python -m api` runs the `jiuzhu` command line."""

from api.cli import main

if __name__ == "__main__":  # not again in the worker processes a local Dask cluster spawns
    main()
