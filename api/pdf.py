"""HTML to an A4 PDF through headless Chromium (Debian's `chromium`), the browser the bureau's
reports are tested in. The page's own `@page` rule sets A4 and the margins."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PdfError", "chromium", "html_to_pdf"]


class PdfError(Exception):
    """No browser to print with, or the browser failed."""


def chromium() -> str | None:
    """The Chromium to print with: $JIUZHU_CHROMIUM, else `chromium` on the PATH."""
    configured = os.environ.get("JIUZHU_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def html_to_pdf(page: Path, pdf: Path, timeout: float = 120.0) -> Path:
    """Print ``page`` to ``pdf``; the file appears whole or not at all."""
    browser = chromium()
    if browser is None:
        raise PdfError("--pdf needs Chromium: install Debian's `chromium` package or set JIUZHU_CHROMIUM")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        partial = pdf.with_name(pdf.name + ".partial")
        args = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={partial}",
            page.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            partial.unlink(missing_ok=True)
            raise PdfError(f"Chromium did not finish printing {page.name} within {timeout:.0f} s") from None
        if done.returncode != 0 or not partial.exists() or partial.stat().st_size == 0:
            partial.unlink(missing_ok=True)
            tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise PdfError(f"Chromium could not print {page.name}: {tail[0]}")
        partial.replace(pdf)
    return pdf
