"""Delivery of the engine: the command line (and later the HTTP service and the store)."""

__all__: list[str] = []
