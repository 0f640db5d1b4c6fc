"""Email preview: modular Jinja2 email templates rendered with one contact's merge fields.

`templates/email/base.html` assembles the blocks (header, hero, content blocks from the
content rules, segment block, lifecycle block, product recommendations, footer with
unsubscribe). A segment gets its own block when `templates/email/segments/<segment>.html`
exists, else the generic one. The copy is in the contact's language (`email_copy.yml`,
English fallback); subject line and preheader come from the same file. Values whose
fallback fired are highlighted in the preview (the `FALLBACKS` column of the export).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

TEMPLATE_DIR = Path(__file__).parent / "templates" / "email"
COPY_PATH = Path(__file__).with_name("email_copy.yml")
DEFAULT_LANGUAGE = "en"
# Columns of an export row that are bookkeeping, not merge tags.
NOT_TAGS = {"email", "unified_id", "FALLBACKS", "variant", "is_holdout", "row"}
# Merge tags filled by the content rules (dbt seed content_blocks), in email order.
CONTENT_TAGS = ("LOCAL_OFFER", "BECAUSE_VIEWED", "REENGAGE_OFFER", "SHIPPING_NUDGE")
_FALLBACK_STYLE = "background:#fff3b0;outline:1px dashed #c9a400;"
_env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=1)
def email_copy() -> dict[str, dict[str, Any]]:
    """`{language: {key: text}}` from `email_copy.yml`."""
    return yaml.safe_load(COPY_PATH.read_text(encoding="utf-8")) or {}


def copy_language(contact: dict[str, Any]) -> str:
    """The language whose copy the contact gets: their LANGUAGE if we have copy for it."""
    language = str(contact.get("LANGUAGE") or "").strip().lower().split("-")[0]
    return language if language in email_copy() else DEFAULT_LANGUAGE


def _text(language: str, key: str, segment: str | None = None) -> str:
    """The copy for `key` (per segment for subject/preheader), English when missing."""
    for lang in (language, DEFAULT_LANGUAGE):
        value = email_copy().get(lang, {}).get(key)
        if isinstance(value, dict):
            value = value.get(segment or "default") or value.get("default")
        if value:
            return str(value)
    return key


def fallbacks_of(contact: dict[str, Any]) -> list[str]:
    """Tags whose fallback fired, from the `FALLBACKS` column (comma-separated)."""
    return [t.strip() for t in str(contact.get("FALLBACKS") or "").split(",") if t.strip()]


def merge_fields(contact: dict[str, Any]) -> list[dict[str, Any]]:
    """`[{tag, value, fallback}]` for every merge tag / segment column of the contact."""
    fired = set(fallbacks_of(contact))
    return [{"tag": k, "value": "" if v is None else str(v), "fallback": k in fired}
            for k, v in contact.items() if k not in NOT_TAGS]


def _values(contact: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in contact.items() if k not in NOT_TAGS}


def inbox_line(contact: dict[str, Any], segment: str) -> dict[str, str]:
    """Subject line and preheader as the inbox shows them (plain text, tags filled)."""
    values, language = _values(contact), copy_language(contact)
    named = "FNAME" not in fallbacks_of(contact) and values.get("FNAME")

    def fill(text: str) -> str:
        if not named:  # "there, your cart is waiting" reads badly: leave the name out
            text = re.sub(r"\{name\}[,:]?\s*|[,:]?\s*\{name\}", "", text)
            return text[:1].upper() + text[1:]
        return text.format(name=values["FNAME"])

    return {"language": language, "subject": fill(_text(language, "subject", segment)),
            "preheader": fill(_text(language, "preheader", segment))}


def render_email(contact: dict[str, Any], segment: str, *, highlight: bool = True) -> str:
    """The email HTML for one contact of `segment`, in the contact's language.

    Args:
        contact: one export row (merge tags upper-case, plus `FALLBACKS`, `variant`...).
        segment: segment name (picks `segments/<segment>.html` when present).
        highlight: mark values whose fallback fired (preview only, not for sending).
    """
    fired = set(fallbacks_of(contact))
    values, language = _values(contact), copy_language(contact)

    def tag(name: str) -> Markup:
        value = escape(values.get(name, ""))
        if highlight and name in fired:
            return Markup(f'<span style="{_FALLBACK_STYLE}" title="fallback: {escape(name)}">'
                          f"{value}</span>")
        return Markup(value)

    def t(key: str, **fields: Any) -> Markup:
        # The copy is escaped, the fields are tag() markup: nothing in the YAML becomes HTML.
        return Markup(escape(_text(language, key))).format(**fields)

    segment_block = f"segments/{segment}.html"
    if not (TEMPLATE_DIR / segment_block).is_file():
        segment_block = "segments/default.html"
    recommendations = [(k, values[k]) for k in ("RECO_1", "RECO_2", "RECO_3") if values.get(k)]
    return _env.get_template("base.html").render(
        v=values, tag=tag, t=t, code=lambda text: Markup("<strong>%s</strong>") % text,
        language=language, segment=segment, segment_block=segment_block,
        recommendations=recommendations, content_tags=[c for c in CONTENT_TAGS if values.get(c)],
        preheader=inbox_line(contact, segment)["preheader"],
        variant=str(contact.get("variant") or ""), unsubscribe_url="*|UNSUB|*")
