"""Rules bundles (a .zip of the rules folder) checked in a separate, limited worker process.

A bundle comes over HTTP from whoever holds a policy token, so reading it is defended twice.
The engine's YAML reader (``engine/source.py``: depth, aliases, bytes a file) is the first
line. The second is this module: the zip is unpacked within limits counted on the bytes
actually inflated (the sizes a zip header claims are never trusted), and unpacking, loading
and the rule tests all run in a child process with an address-space limit and a deadline.
A crash, a ``MemoryError`` or a timeout there is a refusal naming the limit, never a dead
or blocked server.
"""

from __future__ import annotations

import errno
import io
import json
import multiprocessing
import resource
import signal
import tempfile
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engine import FieldProblem, InputError, Problem, RuleLoadError, load, register_error, run_tests
from engine import text as catalogue_text

__all__ = [
    "BundleLimits",
    "BundleRefused",
    "BundleTooLarge",
    "CheckedBundle",
    "check_bundle",
    "unpack_bundle",
    "write_files",
]

_KEPT = (".yaml", ".json", ".md")  # what a rules folder holds; other entries are ignored
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class BundleLimits:
    """How much a bundle may unpack to and what checking it may cost (``Settings.bundle``;
    ``jiuzhu serve --bundle-memory MIB --bundle-seconds S`` for the worker's two)."""

    total_bytes: int = 32 * 1024 * 1024  # every kept entry, unpacked
    entries: int = 1000  # entries in the zip, folders and ignored files included
    entry_bytes: int = 1 << 20  # one entry unpacked: the engine reads no larger rule file (MAX_FILE_BYTES)
    ratio: int = 100  # unpacked : packed bytes of one entry (rule files pack 3-10 : 1)
    ratio_floor: int = 64 * 1024  # an entry this small may pack as tightly as it likes
    memory_mib: int = 1024  # the worker's address space
    seconds: float = 60.0  # the worker's wall-clock deadline


class BundleTooLarge(InputError):
    """The zip unpacks to more than a limit allows (HTTP 413)."""


class BundleRefused(InputError):
    """The worker checking the bundle ran out of memory or time, or crashed (HTTP 422)."""


register_error(BundleTooLarge, 2, 413)
register_error(BundleRefused, 2, 422)


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle that loaded and passed its rule tests: what the store keeps."""

    version: str
    files: dict[str, str]
    tests: int


# ------------------------------------------------------------------ unpacking


def _too_large(name: str, message: str) -> BundleTooLarge:
    return BundleTooLarge([FieldProblem(name, message)])


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: BundleLimits, budget: int) -> bytes:
    """One entry, inflated chunk by chunk; refused as soon as a limit is passed."""
    most_by_ratio = max(limits.ratio * info.compress_size, limits.ratio_floor)
    out = bytearray()
    with archive.open(info) as f:
        while chunk := f.read(_CHUNK):
            out += chunk
            if len(out) > limits.entry_bytes:
                raise _too_large(
                    info.filename, catalogue_text("input.bundle_entry_bytes", "en", bound=limits.entry_bytes)
                )
            if len(out) > most_by_ratio:
                raise _too_large(
                    info.filename,
                    catalogue_text("input.bundle_ratio", "en", bound=limits.ratio),
                )
            if len(out) > budget:
                raise _too_large(
                    info.filename, catalogue_text("input.bundle_total_bytes", "en", bound=limits.total_bytes)
                )
    return bytes(out)


def unpack_bundle(data: bytes, limits: BundleLimits | None = None) -> dict[str, str]:
    """A rules bundle: a .zip of the rules folder (files at its root or in one top folder)."""
    limits = limits or BundleLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise InputError([FieldProblem("(body)", catalogue_text("input.bundle_zip", "en"))]) from None
    infos = archive.infolist()
    if len(infos) > limits.entries:
        raise _too_large("(body)", catalogue_text("input.bundle_entries", "en", got=len(infos), bound=limits.entries))
    kept = [i for i in infos if not i.is_dir() and i.filename.endswith(_KEPT)]
    heads = [
        i.filename.removesuffix("ruleset.yaml")
        for i in kept
        if i.filename == "ruleset.yaml" or (i.filename.endswith("/ruleset.yaml") and i.filename.count("/") == 1)
    ]
    prefix = heads[0] if len(heads) == 1 else ""
    files: dict[str, str] = {}
    budget = limits.total_bytes
    for info in kept:
        if not info.filename.startswith(prefix):
            continue
        try:
            raw = _read_entry(archive, info, limits, budget)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError, ValueError) as exc:
            # a bad CRC, an encrypted entry, an unknown compression method, a cut-off stream
            why = str(exc) or exc.__class__.__name__
            raise InputError(
                [FieldProblem(info.filename, catalogue_text("input.bundle_unpack", "en", why=why))]
            ) from None
        budget -= len(raw)
        try:
            files[info.filename.removeprefix(prefix)] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError([FieldProblem(info.filename, catalogue_text("input.bundle_utf8", "en"))]) from None
    if "ruleset.yaml" not in files:
        raise InputError([FieldProblem("ruleset.yaml", catalogue_text("input.bundle_no_ruleset", "en"))])
    return files


def write_files(root: Path, files: Mapping[str, str]) -> None:
    """Write a bundle's files under ``root``; a path leading outside it is refused (zip-slip)."""
    for rel, text in files.items():
        path = (root / rel).resolve()
        if root.resolve() not in path.parents:
            raise InputError([FieldProblem(rel, catalogue_text("input.bundle_path", "en"))])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------ the worker


def _check(data: bytes, limits: BundleLimits) -> CheckedBundle:
    """Unpack, load and test a bundle (run in the worker)."""
    files = unpack_bundle(data, limits)
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), files)
        rs = load(tmp)  # RuleLoadError: every problem at file:line:col
        failed = [r for r in run_tests(rs) if not r.ok]
    if failed:
        raise InputError(
            [
                FieldProblem(
                    f"{r.test.file}:{r.test.pos.line}",
                    catalogue_text("input.rule_test", "en", name=r.test.name, why=msg),
                    "rule-test",
                )
                for r in failed
                for msg in r.failures
            ]
        )
    return CheckedBundle(rs.ruleset_version, dict(rs.files), len(rs.tests))


Check = Callable[[bytes, BundleLimits], CheckedBundle]


def _child(check: Check, data: bytes, limits: BundleLimits, send: Connection) -> None:
    """The worker: limit itself, check, and send back a result made of plain values."""
    size = limits.memory_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size, size))
    cpu = int(limits.seconds) + 2  # a backstop: the parent's deadline normally comes first
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    result: tuple[str, Any]
    try:
        ok = check(data, limits)
        result = ("ok", {"version": ok.version, "files": ok.files, "tests": ok.tests})
    except Exception as exc:
        result = _outcome(exc)
    try:
        answer = json.dumps(result, ensure_ascii=False).encode("utf-8")
    except MemoryError:  # encoding a large bundle's files is one more copy of them
        answer = b'["memory", null]'
    # JSON, not pickle: the parent must not run whatever a compromised worker might send
    send.send_bytes(answer)
    send.close()


def _outcome(exc: Exception) -> tuple[str, Any]:
    """A failed check as plain values: the kind of failure and its problems or reason."""
    if _out_of_memory(exc):
        return ("memory", None)
    if isinstance(exc, RuleLoadError):
        return ("rules", [p.as_dict() for p in exc.problems])
    if isinstance(exc, InputError):
        return ("too-large" if isinstance(exc, BundleTooLarge) else "input", [p.as_dict() for p in exc.problems])
    if isinstance(exc, RecursionError):
        return ("failed", "it is nested too deeply to check (RecursionError)")
    return ("failed", f"checking it failed ({exc.__class__.__name__})")


def _out_of_memory(exc: BaseException | None) -> bool:
    """Whether the address-space limit is behind ``exc``: a ``MemoryError``, or an ``OSError``
    ENOMEM from a system call, raised or wrapped by the loader (which reports any exception
    of a check as an internal problem)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


_ONE_AT_A_TIME = threading.Lock()  # one worker at a time: N uploads never cost N x the memory limit
_CONTEXT: Any = None


def _context() -> Any:
    """The forkserver context: a worker forks from a small, clean process that has the
    engine imported (quick to start; never a fork of the threaded server itself)."""
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["api.bundles"])
        _CONTEXT = ctx
    return _CONTEXT


def _refused(message: str) -> BundleRefused:
    return BundleRefused([FieldProblem("(bundle)", message)])


def check_bundle(data: bytes, limits: BundleLimits | None = None, check: Check = _check) -> CheckedBundle:
    """Check a bundle in a worker process; block until it answers, dies or passes its deadline.

    Raises ``BundleTooLarge`` (413) for a zip limit, ``RuleLoadError`` or ``InputError``
    (422) for the bundle's problems and failed rule tests, ``BundleRefused`` (422) when the
    worker runs out of memory or time or crashes. ``check`` is what the worker runs.
    """
    limits = limits or BundleLimits()
    ctx = _context()
    with _ONE_AT_A_TIME:
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(check, data, limits, send), name="bundle-check", daemon=True)
        proc.start()
        send.close()
        answer: tuple[str, Any] | None = None
        timed_out = False
        try:
            if recv.poll(limits.seconds):
                try:
                    kind, value = json.loads(recv.recv_bytes(maxlength=2 * limits.total_bytes + (1 << 20)))
                    answer = (str(kind), value)
                except (EOFError, OSError, ValueError, TypeError):  # it died, or did not answer as it should
                    answer = None
            else:
                timed_out = True
        finally:
            recv.close()
            proc.join(timeout=5 if answer is not None else 0.5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    if timed_out:
        raise _refused(catalogue_text("input.bundle_seconds", "en", bound=f"{limits.seconds:g}"))
    if answer is None:
        return _died(proc.exitcode, limits)
    kind, value = answer
    if kind == "ok":
        return CheckedBundle(str(value["version"]), dict(value["files"]), int(value["tests"]))
    if kind == "rules":
        raise RuleLoadError([Problem(**p) for p in value])
    if kind in ("input", "too-large"):
        problems = [FieldProblem(**p) for p in value]
        raise BundleTooLarge(problems) if kind == "too-large" else InputError(problems)
    if kind == "memory":
        raise _refused(catalogue_text("input.bundle_memory", "en", bound=limits.memory_mib))
    raise _refused(catalogue_text("input.bundle_unchecked", "en", why=value))


def _died(code: int | None, limits: BundleLimits) -> CheckedBundle:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = "CPU time limit" if name == "SIGXCPU" else f"memory limit of {limits.memory_mib} MiB or a crash"
        raise _refused(catalogue_text("input.bundle_killed", "en", signal=name, why=why))
    raise _refused(catalogue_text("input.bundle_no_answer", "en", code=code, bound=limits.memory_mib))
