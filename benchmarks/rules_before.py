"""The bundled rules without DOMAIN-2.md §9 (older people's ability assessment): a copy
without `programs/ability.yaml`, its parameters and tests, with the §9 lines taken out of
`ruleset.yaml` and the §9.7 conditions out of `elderly_care.yaml`. The hand-written
baseline decides DOMAIN.md §1–8 only, and the bulk benchmarks time the kernel with and
without §9 side by side. Each edit must apply, so a changed rule file fails here loudly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

__all__ = ["rules_without_ability"]

_EDITS = {
    "ruleset.yaml": [
        (r"  # DOMAIN-2\.md §9 \(ability assessment\)\n  - ability_assessed_persons\n  - ability_max_level\n", ""),
        (r"    ability:\n      when: ability\.assessed\n.*?(?=    children:\n)", ""),
    ],
    "programs/elderly_care.yaml": [
        (r"\(disability in \('moderate', 'severe'\) or \(ability\.assessed and ability\.final_level >= 1\)\)",
         "disability in ('moderate', 'severe')"),
        (r"\(disability == 'severe' or \(ability\.assessed and ability\.final_level == 3\)\)", "disability == 'severe'"),
    ],
}  # fmt: skip


def rules_without_ability(src: Path, dest: Path) -> Path:
    """A copy of ``src`` without §9, at ``dest``."""
    shutil.copytree(src, dest)
    for name in ("programs/ability.yaml", "parameters/ability.yaml", "tests/ability.yaml"):
        (dest / name).unlink()
    for name, edits in _EDITS.items():
        path = dest / name
        text = path.read_text(encoding="utf-8")
        for pattern, by in edits:
            text, n = re.subn(pattern, by, text, flags=re.S)
            assert n == 1, f"{name}: {pattern!r} not found"
        path.write_text(text, encoding="utf-8")
    return dest
