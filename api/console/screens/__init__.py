"""One module per console screen; each has a ``router`` and registers its pages (api/console/pages.py)."""
