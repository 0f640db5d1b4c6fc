"""A second landing-file generator, independent of `personalization.generate` (issue 21).

Its own vocabulary (eight countries, Zipf-distributed names and streets, households, planted
namesakes), its own corruption model and its own dirt, written in exactly the landing
contract of docs/design.md, so the night can be tried on data we did not generate.

Public surface:
    generate(out, truth_path, people, days, start, seed, options) -> dict (summary)
    Options: the knobs (dirt rate, duplicate / namesake / household shares, edge cases).

Writes `<out>/<source>/<ds>/...` for `days` deliveries (day 1 a historical backfill), the
ground truth `truth_path` (Parquet `source, source_id, person_id` for crm, shop, order, pixel:
what `personalization evaluate-identity` reads) and `<truth stem>_persons.parquet` (one row
per true person with the attributes the records were drawn from).
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from .activity import (
    build_erasures,
    build_events,
    build_orders,
    build_products,
)
from .population import Options, draw_people
from .records import build_records, build_versions
from .render import (
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    ERASURE_COLUMNS,
    EVENT_COLUMNS,
    PRODUCT_COLUMNS,
    Renderer,
    mutate_event,
    mutate_order,
)

__all__ = ["Options", "generate"]

CONTACT_DIRT = ["invalid_email", "bad_timestamp", "future_timestamp", "missing_key", "bad_date",
                "bad_boolean", "wrong_field_count", "malformed_csv"]
CUSTOMER_DIRT = ["invalid_email", "bad_timestamp", "future_timestamp", "missing_key",
                 "wrong_field_count", "malformed_csv"]
PRODUCT_DIRT = ["bad_price", "missing_key", "wrong_field_count"]
ERASURE_DIRT = ["invalid_email", "bad_timestamp"]
ORDER_DIRT = ["invalid_json", "non_positive_quantity", "missing_key", "future_timestamp",
              "unknown_value", "bad_timestamp", "no_items", "bad_type", "invalid_email"]
EVENT_DIRT = ["invalid_json", "missing_key", "future_timestamp", "unknown_value",
              "bad_timestamp", "bad_type"]

ORDER_JSON = """
select to_json(struct_pack(
    order_id := o.order_id, customer_id := o.customer_id, email := o.email,
    ordered_at := o.ordered_at, status := o.status, currency := o.currency,
    total_amount := o.total_amount,
    items := coalesce(i.items, [])))::varchar as line
from orders o
left join (
    select order_id, list(struct_pack(sku := sku, quantity := quantity, unit_price := unit_price)
                          order by line_no) as items
    from items group by order_id
) i using (order_id)
order by o.row_no
"""

EVENT_JSON = "select to_json(struct_pack({})) ::varchar as line from events order by row_no".format(
    ", ".join(f"{c} := {c}" for c in EVENT_COLUMNS))


def generate(out: Path | str, truth_path: Path | str, people: int, days: int, start: date,
             seed: int = 0, options: Options | None = None) -> dict:
    """Write `days` daily deliveries of crm, shop and pixel under `out`, plus the ground truth.

    Args:
        out: landing directory (created).
        truth_path: Parquet ground truth (must not be inside `out`).
        people: number of true people.
        days: deliveries from `start` (the first one a historical backfill).
        start: first delivery date.
        seed: random seed (same seed, same files).
        options: dirt and edge-case knobs (default `Options()`).

    Returns:
        Summary counts: people, records, orders, events, dirty rows planted per file and kind.
    """
    options = options or Options()
    out, truth_path = Path(out), Path(truth_path)
    if truth_path.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"truth file {truth_path} must not be inside the landing dir {out}")
    rng = np.random.default_rng(seed)
    population = draw_people(people, days, rng, options)
    records = build_records(population, days, rng, options)
    versions = build_versions(records, days, rng, options)
    products = build_products(rng, days)
    orders, items = build_orders(population, records, products, days, rng)
    events, cookies = build_events(population, records, orders, products, days, rng, options)
    erasures = build_erasures(records, days, rng)
    r = Renderer(start, rng, options.dirt_rate, options.edge_cases)
    _render_versions(r, versions, population)
    _edge_fields(versions, rng, options)

    # Edge-case days: an empty customers file and an empty (gzip) event file on one day, an
    # all-bad orders file and an all-bad contacts file on another; CRLF + BOM on a third.
    empty_day = days // 2 if options.edge_cases and days > 2 else None
    bad_day = days - 1 if options.edge_cases and days > 1 else None
    crlf_day = 1 if options.edge_cases and days > 3 else None
    for d in range(days):
        ds = r.ds(d).isoformat()
        crm, shop, pixel = (out / s / ds for s in ("crm", "shop", "pixel"))
        today = versions[versions["deliver_day"] == d].sort_values("line_key")
        r.write_csv(crm / "contacts.csv", today[today["system"] == "crm"], CONTACT_COLUMNS,
                    CONTACT_DIRT, "contact_id", all_bad=d == bad_day,
                    line_ending="\r\n" if d == crlf_day else "\n", bom=d == crlf_day)
        er = erasures[erasures["deliver_day"] == d]
        r.write_csv(crm / "erasure_requests.csv",
                    er.assign(requested_at=r.timestamps(er["requested_s"].to_numpy())),
                    ERASURE_COLUMNS, ERASURE_DIRT if len(er) > 20 else [], "email")
        if d == empty_day:
            (shop / "customers.csv").parent.mkdir(parents=True, exist_ok=True)
            (shop / "customers.csv").write_bytes(b"")
        else:
            r.write_csv(shop / "customers.csv", today[today["system"] == "shop"].rename(
                columns={"contact_id": "customer_id"}), CUSTOMER_COLUMNS, CUSTOMER_DIRT, "customer_id")
        live = products[products["launch_day"] <= d].assign(
            active=lambda f: np.where(f["active"], "true", "false"),
            price=lambda f: f["price"].map("{:.2f}".format))
        r.write_csv(shop / "products.csv", live, PRODUCT_COLUMNS, PRODUCT_DIRT, "sku")
        o = orders[orders["deliver_day"] == d]
        o = o.assign(ordered_at=r.timestamps(o["ordered_s"].to_numpy(),
                                             population["utc_offset"].to_numpy()[o["person"].to_numpy()]),
                     row_no=np.arange(len(o)))
        its = items[items["order_id"].isin(o["order_id"])]
        its = its.assign(line_no=np.arange(len(its)))
        r.write_jsonl(shop / "orders.jsonl", ORDER_JSON, {"orders": o, "items": its}, ORDER_DIRT,
                      mutate_order, all_bad=d == bad_day)
        if d == empty_day:
            (pixel / "events.jsonl.gz").parent.mkdir(parents=True, exist_ok=True)
            (pixel / "events.jsonl.gz").write_bytes(gzip.compress(b""))
            continue
        e = events[events["deliver_day"] == d]
        known = e["person"].to_numpy() >= 0
        offsets = np.where(known, population["utc_offset"].to_numpy()[np.where(known, e["person"], 0)], "+00:00")
        e = e.assign(occurred_at=r.timestamps(e["occurred_s"].to_numpy(), offsets),
                     row_no=np.arange(len(e)))
        r.write_jsonl(pixel / "events.jsonl.gz", EVENT_JSON, {"events": e}, EVENT_DIRT,
                      mutate_event, gz=True)

    _write_truth(truth_path, records, orders, events, cookies, population)
    return {"people": people, "days": days, "crm_records": int((records["system"] == "crm").sum()),
            "shop_records": int((records["system"] == "shop").sum()),
            "record_versions": len(versions), "orders": int(orders["order_id"].nunique()),
            "events": len(events), "dirt": dict(sorted(r.planted.items()))}


def _render_versions(r: Renderer, versions: pd.DataFrame, population: pd.DataFrame) -> None:
    """Text of every contract column of the CRM / shop versions (in place)."""
    offsets = population["utc_offset"].to_numpy()[versions["person"].to_numpy()]
    versions["contact_id"] = versions["record_id"]
    versions["created_at"] = r.timestamps(versions["created_s"].to_numpy(), offsets)
    versions["updated_at"] = r.timestamps(versions["updated_s"].to_numpy(), offsets)
    opted = versions["opted_in"].to_numpy() & (versions["system"] == "crm").to_numpy()
    versions["email_opt_in"] = np.where(versions["system"] == "crm",
                                        np.where(opted, "true", "false"), None)
    versions["opt_in_at"] = np.where(opted, versions["created_at"], None)
    versions["unsubscribed_at"] = r.timestamps(versions["unsubscribed_s"].to_numpy(), offsets)
    versions["line_key"] = r.rng.random(len(versions))  # file order is not id order


def _edge_fields(versions: pd.DataFrame, rng: np.random.Generator, options: Options) -> None:
    """Very long fields, an emoji in a name, a comma inside a street (quoted CSV)."""
    if not options.edge_cases or not len(versions):
        return
    n = len(versions)
    pick = rng.random(n)
    long = pick < 0.001
    versions.loc[long, "street"] = versions.loc[long, "street"].fillna("") + ", " + "Hinterhaus " * 300
    emoji = (pick >= 0.001) & (pick < 0.0015)
    versions.loc[emoji, "first_name"] = versions.loc[emoji, "first_name"].fillna("") + " 🌸"
    comma = (pick >= 0.0015) & (pick < 0.004)
    versions.loc[comma, "street"] = versions.loc[comma, "street"].fillna("") + ", 2nd floor"
    long_city = (pick >= 0.004) & (pick < 0.0045)
    versions.loc[long_city, "city"] = "Llanfair" + "pwllgwyngyll" * 100


def _write_truth(path: Path, records: pd.DataFrame, orders: pd.DataFrame, events: pd.DataFrame,
                 cookies: pd.DataFrame, population: pd.DataFrame) -> None:
    person_ids = population["person_id"].to_numpy()
    used = cookies[cookies["anonymous_id"].isin(events["anonymous_id"])]
    unique_orders = orders.drop_duplicates("order_id")
    truth = pd.concat([
        pd.DataFrame({"source": records["system"], "source_id": records["record_id"],
                      "person_id": person_ids[records["person"].to_numpy()]}),
        pd.DataFrame({"source": "order", "source_id": unique_orders["order_id"],
                      "person_id": person_ids[unique_orders["person"].to_numpy()]}),
        pd.DataFrame({"source": "pixel", "source_id": used["anonymous_id"],
                      "person_id": used["person_id"]}),
    ], ignore_index=True).astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    truth.to_parquet(path, index=False)
    persons = population[["person_id", "country", "first_name", "last_name", "birth_date", "email",
                          "national_number", "street", "town", "postcode", "old_street",
                          "old_town", "old_postcode", "household_id"]]
    persons.to_parquet(path.with_name(f"{path.stem}_persons.parquet"), index=False)
