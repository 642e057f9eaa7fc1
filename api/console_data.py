"""Read-only views the console's jobs and registries screens list: jobs with their progress,
a job's rejects page by page, the data folder's caseloads, registry versions and what changed
between two versions. Reads the store's tables directly; writes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from api.store import jobs, registry_versions
from engine import safe_cell

if TYPE_CHECKING:
    from api.service import Service
    from api.store import User

__all__ = [
    "CASELOAD_SUFFIXES",
    "caseload_choices",
    "job_rows",
    "percent",
    "registry_diff",
    "registry_history",
    "rejects_page",
]

CASELOAD_SUFFIXES = (".jsonl", ".parquet", ".csv", ".xlsx")
_PAGE = 50


def percent(done: int, total: int, status: str) -> int:
    """Progress in whole percent; a finished job is 100 whatever its counts.

    >>> percent(1, 4, "running"), percent(0, 0, "done"), percent(0, 0, "queued")
    (25, 100, 0)
    """
    if status == "done":
        return 100
    return min(100, int(100 * done / total)) if total > 0 else 0


def job_rows(
    service: Service, user: User, kinds: tuple[str, ...], own_only: bool, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest jobs of some kinds (``own_only``: those ``user`` started), with progress."""
    query = sa.select(jobs).where(jobs.c.kind.in_(kinds)).order_by(jobs.c.id.desc()).limit(limit)
    if own_only:
        query = query.where(jobs.c.created_by == user.id)
    with service.store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return [
        {
            "id": r["id"],
            "kind": r["kind"],
            "status": r["status"],
            "done": r["done"],
            "total": r["total"],
            "percent": percent(r["done"], r["total"], r["status"]),
            "created_at": r["created_at"],
            "created_by": r["created_by"],
        }
        for r in rows
    ]


def caseload_choices(service: Service, most: int = 200) -> list[str]:
    """Caseloads in the data folder a screening may read: ``.jsonl`` files and folders with a
    households table, as paths relative to the folder (what ``POST /v1/screenings`` takes).
    The service's own folders (jobs, uploads, drafts) and hidden ones are not walked."""
    root = service.settings.data_dir
    found: list[str] = []
    skip = {"jobs", "uploads", "drafts"}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        top = here == root
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (top and d in skip))
        if here != root and any((here / f"households{s}").is_file() for s in CASELOAD_SUFFIXES[1:]):
            found.append(here.relative_to(root).as_posix())
        found += [(here / f).relative_to(root).as_posix() for f in sorted(files) if f.endswith(".jsonl")]
        if len(found) >= most:
            break
    return sorted(found)[:most]


def rejects_page(path: Path, page: int, size: int = _PAGE) -> dict[str, Any]:
    """One page of a job's rejects file (any format the job wrote), cells neutralised."""
    import polars as pl

    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
    elif path.suffix == ".xlsx":
        frame = pl.read_excel(path, engine="openpyxl")
    else:
        frame = pl.read_csv(path, infer_schema=False)
    total = frame.height
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    part = frame.slice((page - 1) * size, size)
    rows = [[safe_cell(v) for v in row] for row in part.rows()]
    return {"columns": part.columns, "rows": rows, "page": page, "pages": pages, "total": total}


def registry_history(service: Service, name: str, limit: int = 50) -> list[dict[str, Any]]:
    """The versions of one registry, newest first: id, version, rows, rejected rows, when, by whom."""
    query = (
        sa.select(
            registry_versions.c.id,
            registry_versions.c.version,
            registry_versions.c.rows,
            registry_versions.c.rejected,
            registry_versions.c.created_by,
            registry_versions.c.created_at,
        )
        .where(registry_versions.c.name == name)
        .order_by(registry_versions.c.id.desc())
        .limit(limit)
    )
    with service.store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for r in rows:
        r["rejected"] = len({x.get("line") for x in json.loads(r["rejected"] or "[]")})
    return rows


def registry_diff(service: Service, old: int, new: int, most: int = 500) -> dict[str, Any]:
    """The keys (e.g. person IDs) a newer registry version added and removed, at most ``most``
    of each shown."""
    a = service.store.registry_version(old)
    b = service.store.registry_version(new)
    if a is None or b is None or a["name"] != b["name"]:
        from api.service import NotFound

        raise NotFound("console.not_found.registry_versions", old=old, new=new)
    ka, kb = set(json.loads(a["keys"])), set(json.loads(b["keys"]))
    added, removed = sorted(kb - ka), sorted(ka - kb)
    return {
        "name": a["name"],
        "old": {"id": old, "version": a["version"], "rows": a["rows"]},
        "new": {"id": new, "version": b["version"], "rows": b["rows"]},
        "added": added[:most],
        "removed": removed[:most],
        "added_count": len(added),
        "removed_count": len(removed),
        "kept": len(ka & kb),
    }
