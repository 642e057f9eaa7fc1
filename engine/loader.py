"""Where ``load`` was before the loader was split by phase (``engine.loading``)."""

from engine.loading import BUILTIN_FIELDS, load

__all__ = ["BUILTIN_FIELDS", "load"]
