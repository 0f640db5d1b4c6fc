"""Email preview: modular Jinja2 email templates rendered with one contact's merge fields.

`templates/email/base.html` assembles the blocks (header, hero, segment block, lifecycle
block, product recommendations, footer with unsubscribe). A segment gets its own block when
`templates/email/segments/<segment>.html` exists, else the generic one. Values whose fallback
fired are highlighted in the preview (the `FALLBACKS` column of the export says which).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

TEMPLATE_DIR = Path(__file__).parent / "templates" / "email"
# Columns of an export row that are bookkeeping, not merge tags.
NOT_TAGS = {"email", "unified_id", "FALLBACKS", "variant", "is_holdout", "row"}
_FALLBACK_STYLE = "background:#fff3b0;outline:1px dashed #c9a400;"
_env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def fallbacks_of(contact: dict[str, Any]) -> list[str]:
    """Tags whose fallback fired, from the `FALLBACKS` column (comma-separated)."""
    return [t.strip() for t in str(contact.get("FALLBACKS") or "").split(",") if t.strip()]


def merge_fields(contact: dict[str, Any]) -> list[dict[str, Any]]:
    """`[{tag, value, fallback}]` for every merge tag / segment column of the contact."""
    fired = set(fallbacks_of(contact))
    return [{"tag": k, "value": "" if v is None else str(v), "fallback": k in fired}
            for k, v in contact.items() if k not in NOT_TAGS]


def render_email(contact: dict[str, Any], segment: str, *, highlight: bool = True) -> str:
    """The email HTML for one contact of `segment`.

    Args:
        contact: one export row (merge tags upper-case, plus `FALLBACKS`, `variant`...).
        segment: segment name (picks `segments/<segment>.html` when present).
        highlight: mark values whose fallback fired (preview only, not for sending).
    """
    fired = set(fallbacks_of(contact))
    values = {k: "" if v is None else str(v) for k, v in contact.items() if k not in NOT_TAGS}

    def tag(name: str) -> Markup:
        value = escape(values.get(name, ""))
        if highlight and name in fired:
            return Markup(f'<span style="{_FALLBACK_STYLE}" title="fallback: {escape(name)}">'
                          f"{value}</span>")
        return Markup(value)

    segment_block = f"segments/{segment}.html"
    if not (TEMPLATE_DIR / segment_block).is_file():
        segment_block = "segments/default.html"
    recommendations = [(k, values[k]) for k in ("RECO_1", "RECO_2", "RECO_3") if values.get(k)]
    return _env.get_template("base.html").render(
        v=values, tag=tag, segment=segment, segment_block=segment_block,
        recommendations=recommendations,
        variant=str(contact.get("variant") or ""), unsubscribe_url="*|UNSUB|*")
