"""Whether tonight's segments build must run the segments' dbt unit tests.

A unit test checks a segment's SQL on fixed rows, never the night's data: its verdict changes
only when the project does (a segment, a macro, a var, a seed, the unit test itself) or dbt
does. So the nights run them once per version of the project: `<dbt target>/
segment_unit_tests.json` keeps the fingerprint of the project whose unit tests all passed,
and a night with the same fingerprint leaves them out (≈ 1.2 s at any scale). An analyst's
edit deployed without CI changes the fingerprint, so that night runs them again; a failing
unit test fails its segment (kept out of the export) and records nothing, so every later
night runs them until they pass. CI runs them whatever the record says
(tests/test_segments_unit.py).
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from typing import Any

from personalization.config import Settings

RECORD = "segment_unit_tests.json"
# What a unit test's verdict can depend on: the project's files and the dbt that runs them.
_PROJECT_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md"}
_PACKAGES = ("dbt-core", "dbt-duckdb", "duckdb")


def project_fingerprint(settings: Settings) -> str:
    """A hash of every project file the unit tests read and of dbt's and DuckDB's versions."""
    root = settings.project_dir
    files = [root / "dbt_project.yml", *(root / "dbt_project").rglob("*")]
    digest = hashlib.sha256()
    for path in sorted(p for p in files if p.is_file() and p.suffix in _PROJECT_SUFFIXES):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for package in _PACKAGES:
        digest.update(f"{package}=={version(package)}\0".encode())
    return digest.hexdigest()


def already_passed(fingerprint: str, settings: Settings) -> bool:
    """Whether the unit tests of this version of the project passed on an earlier night."""
    try:
        return json.loads((settings.dbt_target_dir / RECORD).read_text())["fingerprint"] == fingerprint
    except (OSError, ValueError, KeyError, TypeError):
        return False


def statuses(result: Any) -> list[str]:
    """The status of every unit test a dbt build ran (none when it left them out)."""
    return [str(r.status) for r in getattr(result, "results", None) or []
            if r.node.resource_type == "unit_test"]


def record(statuses: list[str], fingerprint: str, settings: Settings) -> None:
    """Keep `fingerprint` when the build ran unit tests and every one of them passed."""
    if statuses and all(status == "pass" for status in statuses):
        path = settings.dbt_target_dir / RECORD
        path.write_text(json.dumps({"fingerprint": fingerprint, "unit_tests": len(statuses)}))
