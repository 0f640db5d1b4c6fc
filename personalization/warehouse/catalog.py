"""Which segments exist: read from dbt's manifest, so a new SQL file needs no Python change."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personalization.config import Settings
from personalization.exceptions import WarehouseError

SEGMENT_TAG = "segment"


@dataclass(frozen=True)
class Segment:
    """A segment model as dbt describes it."""

    name: str
    description: str
    owner: str
    expires_after_days: int
    merge_fields: tuple[str, ...]
    columns: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _is_segment(node: dict[str, Any]) -> bool:
    if node.get("resource_type") != "model":
        return False
    path = node.get("original_file_path", "")
    return SEGMENT_TAG in node.get("tags", []) or "/models/segments/" in f"/{path}"


def list_segments(settings: Settings, manifest_path: Path | None = None) -> list[Segment]:
    """All segment models in dbt's manifest, sorted by name."""
    path = manifest_path or settings.dbt_target_dir / "manifest.json"
    if not path.exists():
        raise WarehouseError(f"dbt manifest not found at {path}: build the warehouse first")
    manifest = json.loads(path.read_text())
    segments = []
    for node in manifest.get("nodes", {}).values():
        if not _is_segment(node):
            continue
        meta = {**node.get("meta", {}), **node.get("config", {}).get("meta", {})}
        segments.append(
            Segment(
                name=node["name"],
                description=(node.get("description") or "").strip(),
                owner=str(meta.get("owner", "unknown")),
                expires_after_days=int(meta.get("expires_after_days", 90)),
                merge_fields=tuple(meta.get("merge_fields", [])),
                columns=tuple(node.get("columns", {}).keys()),
                meta=meta,
            )
        )
    return sorted(segments, key=lambda s: s.name)
