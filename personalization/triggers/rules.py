"""Trigger rules as files: `triggers/<name>.yml` (timing, template, merge fields) plus
`triggers/<name>.sql` (who is due). Adding the two files is all it takes (docs/triggers.md).

The SQL is a DuckDB select over the runner's views (`events`, `people`, `products`,
`recommendations`) and returns one row per candidate send with at least `unified_id`,
`dedup_key` (one send per key, ever) and `due_at` (when the wait is over); every other
column is available to the merge fields. Jinja variables: `now` (a TIMESTAMP literal),
`wait` (an INTERVAL literal of `wait_minutes`) and every key of the YAML's `params`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import yaml

from personalization.exceptions import ConfigError

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_FIELD = re.compile(r"[A-Z][A-Z0-9_]{0,29}")
_KEYS = {"description", "wait_minutes", "cooldown_hours", "max_age_hours", "campaign",
         "template", "esp", "merge_fields", "params", "enabled"}


@dataclass(frozen=True)
class MergeField:
    """A merge field the send carries: a column of the candidate row, with a fallback."""

    name: str
    column: str
    fallback: str | None = None


@dataclass(frozen=True)
class TriggerRule:
    name: str
    description: str
    sql: str  # the Jinja template of the candidates query
    wait_minutes: int
    cooldown_hours: float
    max_age_hours: float
    campaign: str
    template: str
    merge_fields: tuple[MergeField, ...]
    esp: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, now: datetime) -> str:
        """The candidates query as of `now` (UTC, naive)."""
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        return env.from_string(self.sql).render(
            now=f"TIMESTAMP '{now.isoformat(sep=' ')}'",
            wait=f"INTERVAL {int(self.wait_minutes)} MINUTE",
            **self.params)


def _number(data: dict, key: str, default: float, path: Path) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{path}: {key} must be a non-negative number, got {value!r}")
    return value


def _merge_fields(raw: Any, path: Path) -> tuple[MergeField, ...]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: merge_fields must map FIELD_NAME to {{from, fallback}}")
    fields = []
    for name, spec in raw.items():
        if not _FIELD.fullmatch(str(name)):
            raise ConfigError(f"{path}: merge field {name!r} must be UPPER_SNAKE_CASE (<= 30)")
        spec = {"from": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or not spec.get("from"):
            raise ConfigError(f"{path}: merge field {name} needs a `from` column")
        fallback = spec.get("fallback")
        fields.append(MergeField(name, str(spec["from"]),
                                 None if fallback is None else str(fallback)))
    return tuple(fields)


def load_rule(yml: Path) -> TriggerRule | None:
    """One rule from its YAML and SQL files; None when it is disabled.

    Raises:
        ConfigError: one line naming the file and what is wrong.
    """
    name = yml.stem
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{yml}: trigger names are lower_snake_case")
    try:
        data = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{yml} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{yml} must hold a mapping")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{yml}: unknown key(s) {unknown}; known: {sorted(_KEYS)}")
    if data.get("enabled", True) is False:
        return None
    sql_path = yml.with_suffix(".sql")
    if not sql_path.is_file():
        raise ConfigError(f"{yml}: the rule's query {sql_path.name} is missing")
    return TriggerRule(
        name=name,
        description=str(data.get("description", "")),
        sql=sql_path.read_text(encoding="utf-8"),
        wait_minutes=int(_number(data, "wait_minutes", 60, yml)),
        cooldown_hours=_number(data, "cooldown_hours", 24, yml),
        max_age_hours=_number(data, "max_age_hours", 24, yml),
        campaign=str(data.get("campaign", name)),
        template=str(data.get("template", name)),
        merge_fields=_merge_fields(data.get("merge_fields", {}), yml),
        esp=dict(data.get("esp") or {}),
        params=dict(data.get("params") or {}),
    )


def load_rules(folder: Path) -> list[TriggerRule]:
    """Every enabled rule under `folder`, by name.

    Raises:
        ConfigError: the folder is missing or a rule is malformed.
    """
    if not folder.is_dir():
        raise ConfigError(f"no trigger rules folder at {folder} (setting triggers_dir)")
    rules = [load_rule(p) for p in sorted(folder.glob("*.yml"))]
    return [r for r in rules if r is not None]
