"""Segment descriptions for people: dbt's Jinja (`var('x') (3)`, `{{ ref('y') }}`) as plain text.

Analysts write descriptions next to the SQL and name the dbt variables they use, often with
the default in brackets. Marketers should read "in the last 3 days", not
"in the last var('cart_abandoners_days') (3) days".
"""

from __future__ import annotations

import re
from typing import Any

_Q = r"['\"]"
# var('name') followed by its value in brackets, as the analysts write it.
_VAR_WITH_VALUE = re.compile(rf"(?:\{{\{{\s*)?var\(\s*{_Q}(\w+){_Q}\s*\)(?:\s*\}}\}})?\s*\(([^()]*)\)")
# var('name') or var('name', default), with or without {{ }}.
_VAR = re.compile(rf"(?:\{{\{{\s*)?var\(\s*{_Q}(\w+){_Q}\s*(?:,\s*([^()]*?))?\s*\)(?:\s*\}}\}})?")
_REF = re.compile(rf"(?:\{{\{{\s*)?(?:ref|source)\(\s*(?:{_Q}\w+{_Q}\s*,\s*)?{_Q}([\w.]+){_Q}\s*\)(?:\s*\}}\}})?")
_JINJA = re.compile(r"\{\{\s*(.*?)\s*\}\}|\{%.*?%\}", re.S)


def _value(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def plain_description(text: str | None, variables: dict[str, Any]) -> str:
    """`text` with dbt Jinja replaced by values: `var('x') (3)` → 3, `{{ ref('y') }}` → y."""
    if not text:
        return ""
    out = _VAR_WITH_VALUE.sub(lambda m: _value(variables.get(m.group(1), m.group(2).strip())), text)
    out = _VAR.sub(lambda m: _value(variables.get(m.group(1), (m.group(2) or m.group(1)).strip(" '\""))),
                   out)
    out = _REF.sub(lambda m: m.group(1), out)
    out = _JINJA.sub(lambda m: (m.group(1) or "").strip(" '\""), out)
    return re.sub(r"\s+", " ", out).strip()
