"""Great Expectations Data Docs served offline: no CDN, no JavaScript, strict CSP.

GX's pages load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs, and the
index page's validation table is filled by JavaScript from a literal in the page. The
portal's CSP (rightly) blocks all of that, which left the page unstyled and the table
empty. Instead of vendoring those libraries, each page is rewritten on the way out:

- every `<script>`, inline event handler and stylesheet/image from another host is removed,
  and the
  portal's own `datadocs.css` (the few Bootstrap classes GX uses, icons as characters) is
  linked instead;
- each bootstrap-table is filled on the server from the literal GX wrote (Python reprs,
  read with `ast.literal_eval`: never executed), newest first, each row linking to its page.

Pages keep working when GX changes its markup a little: a table whose literal cannot be read
is left as it is and the rest of the page is still served.
"""

from __future__ import annotations

import ast
import logging
import re
from html import escape

logger = logging.getLogger(__name__)

STYLESHEET = '<link rel="stylesheet" href="/static/datadocs.css">'
_SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.S | re.I)
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.I)
_REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"'](?:https?:)?//[^>]*>", re.I)
_REMOTE_CSS_URL = re.compile(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)", re.I)
_ALT = re.compile(r"\balt\s*=\s*\"([^\"]*)\"", re.I)
_ONCLICK_BUTTON = re.compile(r"<button\b[^>]*\bonclick=[^>]*>.*?</button>", re.S | re.I)
_EVENT_ATTRIBUTE = re.compile(r"\s+on[a-z]+\s*=\s*(\"[^\"]*\"|'[^']*')", re.I)
_TABLE_INIT = re.compile(
    r"\$\('#(?P<id>[\w-]+)'\)\.bootstrapTable\(\s*Object\.assign\(\s*\{\s*"
    r"columns:\s*(?P<columns>\[.*?\]),\s*data:\s*(?P<data>\[.*?\])\s*,\s*(?:toolbar:|\})", re.S)
_STATUS_FIELD = "validation_success"


def _table_rows(columns: list[dict], rows: list[dict]) -> str:
    rows = sorted(rows, key=lambda r: r.get("_run_time_sort") or 0, reverse=True)
    head = "".join(f"<th>{escape(str(c.get('title', c.get('field', ''))))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for col in columns:
            field = str(col.get("field", ""))
            if field == _STATUS_FIELD:
                # GX shows an icon font here; say it in words instead.
                text = str(row.get("_validation_success_text", ""))
                state = "passed" if text.lower() == "success" else "failed"
                cell = f'<span class="badge {state}">{escape(text)}</span>'
            else:
                # GX-generated markup for its own docs (suite names, batch ids): kept as is.
                cell = str(row.get(field, ""))
            cells.append(f"<td>{cell}</td>")
        link = row.get("_table_row_link_path")
        cells.append(f'<td><a href="{escape(str(link))}">open</a></td>' if link else "<td></td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<thead><tr>{head}<th></th></tr></thead><tbody>{''.join(body)}</tbody>"


def _fill_tables(html: str) -> str:
    for m in _TABLE_INIT.finditer(html):
        try:
            columns, rows = ast.literal_eval(m.group("columns")), ast.literal_eval(m.group("data"))
        except (ValueError, SyntaxError) as e:
            logger.warning("data docs: cannot read the data of table %s: %s", m.group("id"), e)
            continue
        table = re.compile(rf"(<table\b[^>]*\bid=\"{re.escape(m.group('id'))}\"[^>]*>)\s*(</table>)", re.S)
        html = table.sub(lambda t, c=columns, r=rows: t.group(1) + _table_rows(c, r) + t.group(2),
                         html, count=1)
    return html


def _remote_image(m: re.Match) -> str:
    alt = _ALT.search(m.group(0))
    return f'<span class="ge-brand">{alt.group(1) if alt else ""}</span>'


def render_offline(html: str) -> str:
    """The Data Docs page `html` rewritten to need nothing but the portal itself."""
    html = _fill_tables(html)
    html = _SCRIPT.sub("", html)
    html = _REMOTE_LINK.sub("", html)
    html = _REMOTE_IMG.sub(_remote_image, html)
    html = _REMOTE_CSS_URL.sub("none", html)
    html = _ONCLICK_BUTTON.sub("", html)
    html = _EVENT_ATTRIBUTE.sub("", html)
    if "</head>" in html:
        return html.replace("</head>", f"{STYLESHEET}\n</head>", 1)
    return STYLESHEET + html
