"""Merge fields: warehouse columns to ESP merge tags, with fallbacks and locale formats.

The mapping lives in `merge_fields.yml` next to this module. Everything here produces SQL
(DuckDB): the base relation `b` (one row per eligible contact, with the columns the YAML
expressions read) and the select list that turns it into merge tags plus `FALLBACKS`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import yaml

from personalization.config import Settings
from personalization.exceptions import ExportError
from personalization.sql import literal

logger = logging.getLogger(__name__)

MERGE_FIELDS_PATH = Path(__file__).with_name("merge_fields.yml")
FORMATS = ("money", "date")


@dataclass(frozen=True)
class MergeField:
    """One merge tag: its SQL, its fallback and an optional locale format."""

    tag: str
    sql: str
    fallback: str | None = None
    fallback_sql: str | None = None
    format: str | None = None
    # Blank is a valid value (an optional content block left out): no fallback is recorded.
    optional: bool = False


@dataclass(frozen=True)
class MergeFieldConfig:
    """The parsed `merge_fields.yml`."""

    fields: tuple[MergeField, ...]
    params: dict[str, Any]
    locales: dict[str, dict[str, str]]
    currency_symbols: dict[str, str]

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(f.tag for f in self.fields)


def load_merge_fields(settings: Settings, path: Path | None = None) -> MergeFieldConfig:
    """Parse the merge-field mapping, filling `{param}` placeholders.

    Args:
        settings: supplies `confidence_threshold` when `vip_threshold` is null.
        path: another YAML file (tests); default the packaged `merge_fields.yml`.

    Raises:
        ExportError: the file is missing, not YAML, or a field is malformed.
    """
    path = path or MERGE_FIELDS_PATH
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ExportError(f"cannot read merge fields {path}: {e}") from e
    params = dict(raw.get("params") or {})
    if params.get("vip_threshold") is None:
        params["vip_threshold"] = settings.confidence_threshold
    params.setdefault("default_send_hour", 10)
    params.setdefault("best_seller_days", 90)
    fields = []
    for i, item in enumerate(raw.get("fields") or []):
        try:
            tag = str(item["tag"]).upper()
            sql = str(item["sql"]).format(**params)
        except (KeyError, TypeError) as e:
            raise ExportError(f"{path}: field #{i + 1} needs `tag` and `sql` ({e})") from e
        fmt = item.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise ExportError(f"{path}: {tag}: unknown format {fmt!r}; known: {FORMATS}")
        fallback = item.get("fallback")
        fallback_sql = item.get("fallback_sql")
        fields.append(
            MergeField(
                tag=tag,
                sql=sql,
                fallback=None if fallback is None else str(fallback).format(**params),
                fallback_sql=None if fallback_sql is None else str(fallback_sql).format(**params),
                format=fmt,
                optional=bool(item.get("optional", False)),
            )
        )
    if len({f.tag for f in fields}) != len(fields):
        raise ExportError(f"{path}: duplicate merge tags")
    locales = {str(k): {kk: str(vv) for kk, vv in v.items()} for k, v in (raw.get("locales") or {}).items()}
    if "en" not in locales:
        raise ExportError(f"{path}: the `en` locale is required (last-resort default)")
    symbols = {str(k).upper(): str(v) for k, v in (raw.get("currency_symbols") or {}).items()}
    return MergeFieldConfig(tuple(fields), params, locales, symbols)


def register_locales(con: duckdb.DuckDBPyConnection, cfg: MergeFieldConfig) -> None:
    """Create tables `export_locales` and `export_currency_symbols` from the YAML."""
    con.execute(
        "CREATE OR REPLACE TABLE export_locales (locale VARCHAR, thousands VARCHAR, "
        "decimal_sep VARCHAR, money VARCHAR, date_format VARCHAR, currency VARCHAR)"
    )
    con.executemany(
        "INSERT INTO export_locales VALUES (?, ?, ?, ?, ?, ?)",
        [
            [k, v.get("thousands", ","), v.get("decimal", "."), v.get("money", "{symbol}{amount}"),
             v.get("date", "%Y-%m-%d"), v.get("currency", "USD")]
            for k, v in sorted(cfg.locales.items())
        ],
    )
    con.execute("CREATE OR REPLACE TABLE export_currency_symbols (currency VARCHAR, symbol VARCHAR)")
    if cfg.currency_symbols:
        con.executemany("INSERT INTO export_currency_symbols VALUES (?, ?)",
                        sorted(cfg.currency_symbols.items()))


def money_sql(amount: str) -> str:
    """SQL formatting `amount` with the contact's locale columns of `b`.

    `format('{:,.2f}')` gives `1,234.50`; the separators are then swapped through a
    placeholder so `.`/`,` can trade places (de) or become a space (fr).
    """
    number = (
        f"replace(replace(replace(format('{{:,.2f}}', CAST({amount} AS DOUBLE)), ',', chr(1)), "
        f"'.', b.fmt_decimal), chr(1), b.fmt_thousands)"
    )
    return f"replace(replace(b.fmt_money, '{{symbol}}', b.currency_symbol), '{{amount}}', {number})"


def date_sql(value: str, cfg: MergeFieldConfig) -> str:
    """SQL formatting a date per locale (strftime needs a constant format, hence the CASE)."""
    formats = sorted({v.get("date", "%Y-%m-%d") for v in cfg.locales.values()})
    whens = " ".join(
        f"WHEN {literal(f)} THEN strftime(CAST({value} AS DATE), {literal(f)})" for f in formats
    )
    return f"CASE b.fmt_date {whens} ELSE strftime(CAST({value} AS DATE), '%Y-%m-%d') END"


def _formatted(expr: str, fmt: str | None, cfg: MergeFieldConfig) -> str:
    if fmt == "money":
        return money_sql(expr)
    if fmt == "date":
        return date_sql(expr, cfg)
    return f"CAST({expr} AS VARCHAR)"


def merge_select_sql(cfg: MergeFieldConfig) -> str:
    """Select list over `b`: one VARCHAR column per tag, then `FALLBACKS`.

    A fallback fires when the field's SQL is null or an empty/blank string; FALLBACKS lists
    the tags whose fallback fired, comma-separated in YAML order ('' when none).
    """
    columns, fired = [], []
    for f in cfg.fields:
        missing = f"(NULLIF(trim(CAST(({f.sql}) AS VARCHAR)), '') IS NULL)"
        if f.fallback_sql is not None:
            fallback = f"coalesce({_formatted(f.fallback_sql, f.format, cfg)}, '')"
        else:
            fallback = literal(f.fallback or "")
        columns.append(
            f"CASE WHEN {missing} THEN {fallback} ELSE {_formatted(f.sql, f.format, cfg)} END AS \"{f.tag}\""
        )
        if not f.optional:
            fired.append(f"CASE WHEN {missing} THEN {literal(f.tag)} END")
    columns.append(f"concat_ws(',', {', '.join(fired)}) AS \"FALLBACKS\"")
    return ",\n    ".join(columns)


def build_contact_fields(con: duckdb.DuckDBPyConnection, cfg: MergeFieldConfig) -> None:
    """Create table `export_contact_fields`: `email`, `unified_id`, the merge tags and
    `FALLBACKS` of every row of `export_base`, computed once.

    The tags depend on the contact alone (`b`), not on the segment: every segment joins this
    table instead of formatting the same person's fields again (a person is in several
    segments; the per-segment formatting was the export's largest statement)."""
    con.execute(f"""
    CREATE OR REPLACE TABLE export_contact_fields AS
    SELECT b.email, b.unified_id, {merge_select_sql(cfg)}
    FROM export_base AS b
    """)


def build_base(con: duckdb.DuckDBPyConnection, ds: date, cfg: MergeFieldConfig,
               settings: Settings, source: str = "wh.main") -> int:
    """Create table `export_base`: one row per eligible contact with what merge fields read.

    Reads `export_eligible_contacts` (consent.py) and the warehouse marts. Returns its rows.
    """
    default_locale = settings.locale.replace("_", "-")
    if default_locale not in cfg.locales:
        default_locale = default_locale.split("-")[0]
    if default_locale not in cfg.locales:
        default_locale = "en"
    days = int(cfg.params["best_seller_days"])
    day_end = f"(DATE {literal(ds.isoformat())} + INTERVAL 1 DAY)"
    day_start = f"(DATE {literal(ds.isoformat())} - INTERVAL {days} DAY)"
    con.execute(f"""
    CREATE OR REPLACE TABLE export_base AS
    WITH eligible AS (SELECT * FROM export_eligible_contacts),
    profiles AS (SELECT * FROM {source}.customer_profiles),
    scores AS (SELECT * FROM {source}.customer_scores),
    content AS (SELECT * FROM {source}.customer_content),
    products AS (SELECT * FROM {source}.products),
    items AS (
        SELECT * FROM {source}.order_items
        WHERE ordered_at < {day_end} AND coalesce(status, 'placed') NOT IN ('cancelled', 'refunded')
    ),
    best_sellers AS (
        -- Fallback recommendations: most sold active products over the window; ties by sku.
        -- Only the top few: this list is joined to every contact (the whole catalogue per
        -- contact ran out of memory at 1M customers).
        SELECT list(name ORDER BY quantity DESC, sku)[1:10] AS best_sellers
        FROM (
            SELECT pr.sku, pr.name, coalesce(sum(i.quantity), 0) AS quantity
            FROM products AS pr
            LEFT JOIN items AS i ON i.sku = pr.sku AND i.ordered_at >= {day_start}
            WHERE coalesce(pr.is_active, true) AND pr.name IS NOT NULL
            GROUP BY pr.sku, pr.name
        )
    ),
    top_category AS (
        SELECT arg_max(category, quantity) AS top_category
        FROM (SELECT category, sum(quantity) AS quantity FROM items
              WHERE category IS NOT NULL GROUP BY category ORDER BY category)
    ),
    -- The per-person parts below read only eligible contacts: the rest is never joined.
    reco AS (
        SELECT u.unified_id, list(pr.name ORDER BY u.position) AS reco_names
        FROM (
            SELECT unified_id, unnest(next_best_products) AS sku,
                   generate_subscripts(next_best_products, 1) AS position
            FROM scores
            WHERE unified_id IN (SELECT unified_id FROM eligible)
        ) AS u
        JOIN products AS pr ON pr.sku = u.sku
        WHERE pr.name IS NOT NULL
        GROUP BY u.unified_id
    ),
    last_item AS (
        SELECT i.unified_id,
               arg_max(pr.name, (i.ordered_at, i.order_id, i.line_number)) AS last_product_name
        FROM items AS i JOIN products AS pr ON pr.sku = i.sku
        WHERE i.unified_id IN (SELECT unified_id FROM eligible)
        GROUP BY i.unified_id
    ),
    last_currency AS (
        SELECT unified_id, arg_max(currency, (ordered_at, order_id)) AS currency
        FROM {source}.orders
        WHERE ordered_at < {day_end} AND currency IS NOT NULL
          AND unified_id IN (SELECT unified_id FROM eligible)
        GROUP BY unified_id
    ),
    locale_keys AS (
        SELECT p.unified_id,
               CASE WHEN contains(replace(p.language, '_', '-'), '-')
                    THEN lower(split_part(replace(p.language, '_', '-'), '-', 1)) || '-'
                         || upper(split_part(replace(p.language, '_', '-'), '-', 2))
                    ELSE lower(trim(p.language)) || '-' || upper(trim(p.country)) END AS full_key,
               lower(split_part(replace(trim(p.language), '_', '-'), '-', 1)) AS language_key
        FROM profiles AS p
        WHERE p.unified_id IN (SELECT unified_id FROM eligible)
    ),
    resolved AS (
        SELECT k.unified_id,
               coalesce(l1.locale, l2.locale, {literal(default_locale)}) AS locale
        FROM locale_keys AS k
        LEFT JOIN export_locales AS l1 ON l1.locale = k.full_key
        LEFT JOIN export_locales AS l2 ON l2.locale = k.language_key
    ),
    final AS (
        SELECT
            e.unified_id,
            e.email,
            p.first_name, p.last_name, p.city, p.country, p.language,
            p.favourite_category, p.lifecycle_stage, p.order_count, p.revenue,
            p.last_order_at,
            s.p_vip, s.best_send_hour,
            r.reco_names,
            list_concat(
                coalesce(r.reco_names, []::VARCHAR[]),
                list_filter(bs.best_sellers,
                            lambda x: NOT list_contains(coalesce(r.reco_names, []::VARCHAR[]), x))
            ) AS reco_filled,
            bs.best_sellers,
            tc.top_category,
            li.last_product_name,
            loc.locale,
            split_part(loc.locale, '-', 1) AS locale_language,
            coalesce(lc.currency, fmt.currency) AS currency,
            coalesce(cs.symbol, coalesce(lc.currency, fmt.currency)) AS currency_symbol,
            fmt.thousands AS fmt_thousands,
            fmt.decimal_sep AS fmt_decimal,
            fmt.money AS fmt_money,
            fmt.date_format AS fmt_date,
            cc.local_offer AS content_local_offer,
            cc.because_viewed AS content_because_viewed,
            cc.reengagement_offer AS content_reengagement_offer,
            cc.shipping_nudge AS content_shipping_nudge
        FROM eligible AS e
        JOIN profiles AS p ON p.unified_id = e.unified_id
        LEFT JOIN scores AS s ON s.unified_id = e.unified_id
        LEFT JOIN content AS cc ON cc.unified_id = e.unified_id
        LEFT JOIN reco AS r ON r.unified_id = e.unified_id
        LEFT JOIN last_item AS li ON li.unified_id = e.unified_id
        LEFT JOIN last_currency AS lc ON lc.unified_id = e.unified_id
        LEFT JOIN resolved AS loc ON loc.unified_id = e.unified_id
        LEFT JOIN export_locales AS fmt ON fmt.locale = loc.locale
        LEFT JOIN export_currency_symbols AS cs ON cs.currency = coalesce(lc.currency, fmt.currency)
        CROSS JOIN best_sellers AS bs
        CROSS JOIN top_category AS tc
    )
    SELECT * FROM final
    """)
    return con.execute("SELECT count(*) FROM export_base").fetchone()[0]
