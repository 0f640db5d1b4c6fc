"""The landing contract as data: which files each source delivers, which lake tables they
become, and the type and checks of every column (docs/architecture.md, docs/design.md).

Everything the extractors validate is declared here, so the contract can be read in one place
and the SQL that enforces it is generated, not hand-written per table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column kinds -> DuckDB type stored in the lake.
SQL_TYPES = {
    "text": "VARCHAR",
    "email": "VARCHAR",
    "sha256": "VARCHAR",
    "enum": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "boolean": "BOOLEAN",
    "double": "DOUBLE",
    "quantity": "INTEGER",
}

ORDER_STATUSES = ("placed", "cancelled", "refunded")
EVENT_TYPES = (
    "page_view", "product_view", "add_to_cart", "checkout_start", "purchase", "login",
    "search", "email_open", "email_click",
)


@dataclass(frozen=True)
class Column:
    """One lake column and the checks a landing value must pass to be loaded.

    Attributes:
        name: column name (same in the landing file and the lake).
        kind: one of `SQL_TYPES`; decides the cast and the type checks.
        required: None (may be empty), "key" (empty -> `missing_key`) or "value"
            (empty -> `missing_value`).
        values: allowed values of an `enum` column (compared case-insensitively).
        non_negative: a `double` below zero is quarantined (`negative_amount`).
    """

    name: str
    kind: str = "text"
    required: str | None = None
    values: tuple[str, ...] = ()
    non_negative: bool = False

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]


@dataclass(frozen=True)
class TableSpec:
    """A lake table `raw/<source>/<name>` and its columns (without `_line_number`)."""

    source: str
    name: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class FileSpec:
    """One landing file and the lake tables it feeds (orders.jsonl feeds two)."""

    source: str
    file_name: str
    format: str  # "csv" or "jsonl"
    tables: tuple[TableSpec, ...] = field(default_factory=tuple)
    # "landing": delivered by the source system, required unless the source is optional;
    # "intake": the event intake's day file (docs/triggers.md), always optional.
    root: str = "landing"


def _cols(*columns: Column | str) -> tuple[Column, ...]:
    return tuple(c if isinstance(c, Column) else Column(c) for c in columns)


CONTACTS = TableSpec("crm", "contacts", _cols(
    Column("contact_id", required="key"), Column("email", "email"),
    "first_name", "last_name", "phone", "street", "city", "postcode", "country",
    Column("birth_date", "date"), "gender", "language",
    Column("created_at", "timestamp"), Column("updated_at", "timestamp"),
    Column("email_opt_in", "boolean"), Column("opt_in_at", "timestamp"),
    Column("unsubscribed_at", "timestamp"),
))

ERASURE_REQUESTS = TableSpec("crm", "erasure_requests", _cols(
    Column("email", "email", required="key"),
    Column("requested_at", "timestamp", required="value"),
))

CUSTOMERS = TableSpec("shop", "customers", _cols(
    Column("customer_id", required="key"), Column("email", "email"),
    "first_name", "last_name", "phone", "street", "city", "postcode", "country",
    Column("created_at", "timestamp"), Column("updated_at", "timestamp"),
))

PRODUCTS = TableSpec("shop", "products", _cols(
    Column("sku", required="key"), "name", "category",
    Column("price", "double", non_negative=True), Column("active", "boolean"),
))

ORDERS = TableSpec("shop", "orders", _cols(
    Column("order_id", required="key"), "customer_id", Column("email", "email"),
    Column("ordered_at", "timestamp", required="value"),
    Column("status", "enum", required="value", values=ORDER_STATUSES),
    "currency", Column("total_amount", "double"),
))

# `line_number` (position in the order's `items` array, 1-based) is added by the flattener.
ORDER_ITEMS = TableSpec("shop", "order_items", _cols(
    Column("sku", required="key"),
    Column("quantity", "quantity", required="value"),
    Column("unit_price", "double", required="value", non_negative=True),
))

EVENTS = TableSpec("pixel", "events", _cols(
    Column("event_id", required="key"), Column("occurred_at", "timestamp", required="value"),
    "anonymous_id", "customer_id", Column("email_sha256", "sha256"),
    Column("event_type", "enum", required="value", values=EVENT_TYPES),
    "sku", "campaign_id", "variant", "url", "country", "city", "device",
))

# Events that came through `personalization intake serve`: the same contract, their own lake
# table (one file per table and day); staging unions both and keeps each event_id once.
INTAKE_EVENTS = TableSpec("pixel", "intake_events", EVENTS.columns)

# What the ESPs will not mail, pulled each night by personalization.esp.feedback (hashes
# only). `reported_at` is the ESP's own clock, kept as text: a suppression is never
# quarantined for being "in the future" of ds.
ESP_SUPPRESSIONS = TableSpec("esp", "suppressions", _cols(
    Column("esp", "enum", required="value", values=("mailchimp", "sendgrid", "klaviyo")),
    Column("email_sha256", "sha256", required="key"),
    Column("reason", "enum", required="value",
           values=("unsubscribe", "bounce", "spam_complaint", "invalid_email", "manual")),
    "esp_reason", "reported_at",
))

FILES: dict[str, tuple[FileSpec, ...]] = {
    "crm": (
        FileSpec("crm", "contacts.csv", "csv", (CONTACTS,)),
        FileSpec("crm", "erasure_requests.csv", "csv", (ERASURE_REQUESTS,)),
    ),
    "shop": (
        FileSpec("shop", "customers.csv", "csv", (CUSTOMERS,)),
        FileSpec("shop", "products.csv", "csv", (PRODUCTS,)),
        FileSpec("shop", "orders.jsonl", "jsonl", (ORDERS, ORDER_ITEMS)),
    ),
    "pixel": (
        FileSpec("pixel", "events.jsonl.gz", "jsonl", (EVENTS,)),
        FileSpec("pixel", "events.jsonl", "jsonl", (INTAKE_EVENTS,), root="intake"),
    ),
    "esp": (FileSpec("esp", "suppressions.csv", "csv", (ESP_SUPPRESSIONS,)),),
}


def lake_columns(table: TableSpec) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a lake table in file order, `_line_number` last."""
    cols = [(c.name, c.sql_type) for c in table.columns]
    if table.name == "order_items":
        cols = [("order_id", "VARCHAR"), ("line_number", "INTEGER"), *cols]
    return cols + [("_line_number", "BIGINT")]
