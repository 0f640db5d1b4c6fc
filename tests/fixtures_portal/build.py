"""Writes a fixture home in the real layout (docs/exports.md, docs/architecture.md).

Three exports (2026-01-04..06) of two segments, quality results, Data Docs, a model card,
and hand-made A/B campaign files (the warehouse's campaign_responses mart and purchase events
as the export publishes them) whose expected numbers are worked out in tests/test_portal.py.
The portal only reads files, so writing them directly is enough; the mart itself is tested by
its dbt unit test (models/marts/_marts.yml).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from personalization.config import Settings, load_settings
from personalization.export import files, mailable
from personalization.export.manifest import FILE_KINDS

DATES = ("2026-01-04", "2026-01-05", "2026-01-06")
CAMPAIGN = "cmp-cart"
TAGS = ("FNAME", "LNAME", "CITY", "COUNTRY", "LANGUAGE", "FAV_CATEGORY", "RECO_1", "RECO_2",
        "RECO_3", "LAST_PRODUCT", "BEST_HOUR", "VIP", "LIFECYCLE", "ORDER_COUNT", "TOTAL_SPENT",
        "LAST_ORDER_DATE")
FIRST = ["Anna", "Ben", None, "Dora", "Emil", "Fay", "Gus", "Hana", "Ivan", "Jules", "Kim", "Lou",
         "Mira", "Nils"]


def email_of(uid: str) -> str:
    return f"{FIRST[int(uid[1:]) - 1] or 'nobody'}.{uid}@example.com".lower()


def contact(uid: str, *, variant: str, holdout: bool, extra: dict | None = None) -> dict:
    """One export row; u03 has no first name, so FNAME and two recommendations fell back."""
    n = int(uid[1:])
    first = FIRST[n - 1]
    fired = [] if first else ["FNAME", "RECO_2", "RECO_3"]
    row = {"email": email_of(uid), "unified_id": uid,
           "FNAME": first or "there", "LNAME": "-Smith" if n == 4 else f"Last{n}",
           "CITY": "Berlin" if n % 2 else "Paris", "COUNTRY": "DE" if n % 2 else "FR",
           "LANGUAGE": "de" if n % 2 else "fr", "FAV_CATEGORY": "Shoes",
           "RECO_1": "Trail Runner", "RECO_2": "Rain Jacket" if first else "Best Seller 1",
           "RECO_3": "Wool Socks" if first else "Best Seller 2", "LAST_PRODUCT": "City Sneaker",
           "BEST_HOUR": str(8 + n % 10), "VIP": "yes" if n in (1, 6) else "no",
           "LIFECYCLE": ("active", "new", "at_risk", "lapsed", "prospect")[n % 5],
           "ORDER_COUNT": str(n % 4), "TOTAL_SPENT": f"{n * 42.5:,.2f} €",
           "LAST_ORDER_DATE": "05.01.2026", "FALLBACKS": ",".join(fired)}
    row.update(extra or {})
    row["variant"], row["is_holdout"] = variant, holdout
    return row


def _members(ds: str) -> dict[str, list[dict]]:
    """Segment members per export date: cart_abandoners grows, vip stays."""
    cart_ids = {"2026-01-04": 8, "2026-01-05": 10, "2026-01-06": 12}[ds]
    cart = []
    for n in range(1, cart_ids + 1):
        uid = f"u{n:02d}"
        # u01-u05 and u11 get A, u06-u10 and u12 get B; u11/u12 are the holdout.
        variant = "A" if n <= 5 or n == 11 else "B"
        cart.append(contact(uid, variant=variant, holdout=n >= 11,
                            extra={"CART_SKUS": "SKU-1, SKU-2"}))
    vip = [contact(uid, variant="A", holdout=False) for uid in ("u01", "u06", "u13")]
    if ds != "2026-01-04":
        vip.append(contact("u14", variant="B", holdout=False))
    # winback: three members matched, all without consent, so nothing is exported.
    return {"cart_abandoners": cart, "vip": vip, "winback": []}


_KEYS_ONLY = pa.schema([("unified_id", pa.string()), ("email", pa.string())])


def _write_csv(path: Path, rows: list[dict], neutralise: bool) -> None:
    """The rows as a CSV written by the export's own writer (formula neutralising included)."""
    table = pa.Table.from_pylist(rows) if rows else _KEYS_ONLY.empty_table()
    with duckdb.connect() as con:
        con.register("fixture_rows", table)
        files.write_csv(con, "SELECT * FROM fixture_rows", path, neutralise=neutralise)


def _entry(path: Path, root: Path) -> dict:
    return files.file_entry(path, root)


def sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_export(settings: Settings, ds: str, previous: dict[str, list[dict]] | None) -> dict:
    root = settings.exports_dir / ds
    members = _members(ds)
    segments = []
    meta = {"cart_abandoners": {"description": "Added to cart in the last "
                                               "var('cart_abandoners_days') (3) days, no checkout.",
                                "owner": "growth", "campaign_id": CAMPAIGN, "variants": ["A", "B"]},
            "vip": {"description": "Customers the VIP model scores at or above the threshold.",
                    "owner": "crm", "campaign_id": "vip", "variants": ["A", "B"]},
            "winback": {"description": "Lapsed customers to win back.", "owner": "crm",
                        "campaign_id": "winback", "variants": ["A", "B"]}}
    for name, rows in members.items():
        files = {}
        csv_path = root / "segments" / f"{name}.csv"
        _write_csv(csv_path, rows, neutralise=True)
        files["csv"] = _entry(csv_path, root)
        pq_path = root / "segments" / f"{name}.parquet"
        schema = pa.Table.from_pylist([contact("u00", variant="A", holdout=False)]).schema
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), pq_path)
        files["parquet"] = _entry(pq_path, root)
        # The mailable list is written by the export's own code from the full rows.
        mailable_path = root / mailable.MAILABLE_DIR / f"{name}.csv"
        with duckdb.connect() as con:
            mailable_rows = mailable.write_mailable(
                con, f"read_parquet('{pq_path}')", mailable_path)
        files["mailable"] = _entry(mailable_path, root)
        before = {r["unified_id"] for r in (previous or {}).get(name, [])}
        now = {r["unified_id"] for r in rows}
        added = [r for r in rows if r["unified_id"] not in before]
        removed = [{"unified_id": u, "email": email_of(u)} for u in sorted(before - now)]
        for kind, drows in (("added", added), ("removed", removed), ("changed", [])):
            p = root / "deltas" / f"{name}.{kind}.csv"
            _write_csv(p, drows, neutralise=False)
            files[kind] = _entry(p, root)
        segments.append({"name": name, **meta[name], "stale": False, "data_ds": ds,
                         "members": len(rows) + (3 if name == "winback" else 2),
                         "rows": len(rows), "added": len(added),
                         "removed": len(removed), "changed": 0,
                         "holdout": sum(r["is_holdout"] for r in rows),
                         "mailable_rows": mailable_rows,
                         "excluded": {"not_opted_in": 3 if name == "winback" else 2},
                         "extra_columns": [],
                         "unknown_merge_fields": [], "files": files})
    (root / "erasures.csv").write_text("email,email_sha256,requested_at,is_new\n"
                                       "gone@example.com,x,2026-01-01T00:00:00,false\n")
    gate = {"lake": "passed", "marts": "passed", "segments": "passed", "export": "passed"}
    if ds == "2026-01-05":
        gate["segments"] = "warning"
    manifest = {"manifest_version": 1, "ds": ds, "created_at": f"{ds}T23:59:59Z",
                "previous_export": None, "quality_gate": gate,
                "model_versions": {"vip": ["vip-v1"], "churn": ["churn-v1"]},
                "holdout": {"pct": 5.0, "salt": "personalization-holdout-v1"},
                "file_kinds": FILE_KINDS,
                "campaigns": _write_campaign_files(root),
                "segments": segments}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return members


def _write_quality(settings: Settings) -> None:
    for ds in DATES:
        for stage in ("lake", "marts", "segments"):
            status = "warning" if (ds, stage) == ("2026-01-05", "segments") else "passed"
            warnings = ([{"dataset": "cart_abandoners", "expectation": "row_count",
                          "message": "size changed by +25 %"}] if status == "warning" else [])
            d = settings.quality_dir / ds
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{stage}.json").write_text(json.dumps(
                {"ds": ds, "stage": stage, "status": status, "errors": [], "warnings": warnings}))
    docs = settings.quality_dir / "data_docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "index.html").write_text("<html><body><h1>Data Docs fixture</h1></body></html>")


def _write_models(settings: Settings) -> None:
    d = settings.models_dir / "vip" / "vip-v1"
    d.mkdir(parents=True, exist_ok=True)
    # The shape the model registry writes (personalization/scoring/train.py).
    (d / "metadata.json").write_text(json.dumps({
        "model": "vip", "version": "vip-v1", "approved": True,
        "approval_reason": "beats recency_only and rfm_score on ROC AUC",
        "trained_ds": "2026-01-04", "rows": {"final_fit": 1234, "training": 900},
        "training_window": {"from": "2024-01-05", "to": "2026-01-04"}}))
    (d / "model_card.md").write_text(
        "# VIP model vip-v1\n\nPredicts **VIP** customers.\n\n## Metrics\n\n"
        "| metric | value |\n|---|---|\n| roc_auc | 0.91 |\n\n- trained on 2026-01-04\n"
        "- features: `recency_days`, `frequency`\n\n<script>alert(1)</script>\n")


def _t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, 5) + timedelta(days=day, hours=hour, minutes=minute)


def campaign_responses() -> list[dict]:
    """Hand-made campaign responses, per campaign, variant, person and day, as the
    campaign_responses mart gives them (see tests/test_portal.py for the expected results)."""
    rows: list[dict] = []

    def resp(uid, variant, first, last, opened, clicked=False, converted=False,
             campaign=CAMPAIGN):
        rows.append({"campaign_id": campaign, "variant": variant, "unified_id": uid,
                      "activity_on": first.date(), "first_event_at": first, "last_event_at": last,
                      "has_opened": opened, "has_clicked": clicked, "has_converted": converted})

    # u01 opened twice and clicked, then bought 2 days later: converts (A).
    resp("u01", "A", _t(0, 8), _t(0, 10), True, True, True)
    # u02 clicked but bought 20 days later: no conversion.
    resp("u02", "A", _t(0, 8), _t(0, 10), True, True)
    for uid in ("u03", "u04"):
        resp(uid, "A", _t(0, 8), _t(0, 8), True)
    # u06 bought through its shop account and u07 through the cookie of its click (identity
    # in the warehouse): both convert (B); u08 bought before its click; u09 only clicked.
    resp("u06", "B", _t(0, 8, 30), _t(0, 10), True, True, True)
    resp("u07", "B", _t(0, 8, 30), _t(0, 10), True, True, True)
    resp("u08", "B", _t(0, 8, 30), _t(0, 10), True, True)
    resp("u09", "B", _t(0, 8, 30), _t(0, 10), True, True)
    resp("u10", "B", _t(0, 8, 30), _t(0, 8, 30), True)
    # A newsletter that is not a segment of the exports (its audience is unknown), a day later.
    resp("u13", "A", _t(1, 9), _t(1, 10), True, True, campaign="cmp-news")
    resp("u14", "B", _t(1, 9), _t(1, 9), True, campaign="cmp-news")
    return rows


def campaign_purchases() -> list[dict]:
    """Purchase events since the first response, per person (holdout u11 buys in the window,
    holdout u12 does not buy)."""
    return [{"unified_id": uid, "purchased_at": when} for uid, when in (
        ("u01", _t(2, 10)), ("u02", _t(20, 10)), ("u06", _t(0, 11)), ("u07", _t(0, 12)),
        ("u08", _t(0, 9)), ("u11", _t(1, 12)))]


def _write_campaign_files(root: Path) -> dict:
    out = {}
    for name, rows in (("responses", campaign_responses()), ("purchases", campaign_purchases())):
        path = root / f"campaign_{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        out[name] = {"rows": len(rows), "file": _entry(path, root)}
    return out


def build(home: Path) -> Settings:
    """Write the fixture under `home` and return its settings."""
    settings = load_settings(home=home)
    previous = None
    for ds in DATES:
        previous = _write_export(settings, ds, previous)
    os.symlink(DATES[-1], settings.exports_dir / "latest")
    (settings.exports_dir / ".tmp-2026-01-07-123").mkdir()  # work in progress: ignored
    _write_quality(settings)
    _write_models(settings)
    return settings


def write_real_data_docs(docs_dir: Path) -> None:
    """Real Great Expectations Data Docs (two validations: one passes, one fails) in `docs_dir`."""
    import great_expectations.expectations as gxe
    import pandas as pd

    from personalization.quality.gx_runner import Check, run_checks

    def suite(name: str):
        import great_expectations as gx

        return gx.ExpectationSuite(name=name, expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="unified_id"),
            gxe.ExpectColumnValuesToBeBetween(column="orders", min_value=0, max_value=10)])

    frame = pd.DataFrame({"unified_id": ["u01", "u02"], "orders": [1, 3]})
    bad = pd.DataFrame({"unified_id": ["u01", None], "orders": [1, 99]})
    run_checks([Check("fixture.good", frame, suite("fixture.good"), key="unified_id"),
                Check("fixture.bad", bad, suite("fixture.bad"), key="unified_id")], docs_dir)
