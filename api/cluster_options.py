"""The command line's cluster options (`screen`, `impact`): ``--scheduler`` or ``--workers``
run the work on Dask, one task per partition, and print progress on stderr. Without either,
nothing of Dask is imported."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import click

from engine import FieldProblem, InputError, text

if TYPE_CHECKING:
    from engine import Cluster

__all__ = ["ProgressLine", "cluster_from", "cluster_options"]


def cluster_options(f: Any) -> Any:
    f = click.option(
        "--partitions",
        type=click.IntRange(min=1),
        help="Partitions of the caseload (by household); default 4 per worker. Keep it to resume a run.",
    )(f)
    f = click.option(
        "--workers",
        type=click.IntRange(min=1),
        help="Run on a local Dask cluster of this many worker processes, started and stopped here.",
    )(f)
    return click.option(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="Run on a running Dask cluster (`dask scheduler`); the caseload, rules, registries and"
        " --out must be at the same paths on every worker.",
    )(f)


def cluster_from(scheduler: str | None, workers: int | None, partitions: int | None) -> Cluster | None:
    """The cluster asked for, or None for a run in this process."""
    if scheduler and workers:
        raise InputError([FieldProblem("--workers", text("input.workers_both", "en"))])
    if not (scheduler or workers):
        if partitions:
            raise InputError([FieldProblem("--partitions", text("input.partitions_alone", "en"))])
        return None
    from engine import Cluster

    return Cluster(scheduler=scheduler, workers=workers, partitions=partitions)


class ProgressLine:
    """``partitions 3/8 · 41,250 households/s`` on stderr: at most once a second, and at the end."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.last = 0.0

    def __call__(self, done: int, total: int, households: int, seconds: float) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 1.0:
            return
        self.last = now
        rate = f"{households / seconds:,.0f} households/s" if seconds > 0 and households else "resumed"
        print(f"{self.label}: partitions {done}/{total} · {rate}", file=self.stream, flush=True)
