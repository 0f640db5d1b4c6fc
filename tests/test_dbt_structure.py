"""The dbt structure check (`make structure`) on small hand-made manifests: each rule fires on
the one model that breaks it and on no other, and the allowlist lets through only what it
names. The real project is checked by `make structure` on dbt's own manifest."""

from __future__ import annotations

from personalization.warehouse.structure import (
    ALLOWLIST,
    MAX_JOINS,
    Violation,
    check,
    judge,
    load_allowlist,
)


def _model(name: str, folder: str, refs=(), sources=(), description="what it holds",
           contract=True, code="select 1") -> tuple[str, dict]:
    uid = f"model.personalization.{name}"
    return uid, {
        "resource_type": "model", "name": name,
        "original_file_path": f"dbt_project/models/{folder}/{name}.sql",
        "depends_on": {"nodes": [f"model.personalization.{r}" for r in refs]
                       + [f"source.personalization.{s}" for s in sources]},
        "patch_path": "personalization://x.yml" if description else None,
        "description": description or "",
        "config": {"contract": {"enforced": contract}},
        "raw_code": code,
    }


def _manifest(*models) -> dict:
    return {"nodes": dict(models)}


GOOD = [
    _model("stg_shop__orders", "staging", sources=["shop.orders"], contract=False),
    _model("int_orders__enriched", "intermediate", refs=["stg_shop__orders"], contract=False),
    _model("orders", "marts", refs=["int_orders__enriched"]),
    _model("vip", "segments", refs=["orders"]),
]


def test_a_project_that_follows_the_layers_has_no_violation():
    assert check(_manifest(*GOOD)) == []


def test_each_rule_names_the_model_that_breaks_it():
    bad = [
        _model("customer_scores", "scoring", sources=["scores.customer_scores"]),
        _model("stg_crm__contacts", "staging", refs=["stg_shop__orders"], contract=False),
        _model("int_customers__stats", "intermediate", refs=["orders", "stg_shop__orders"],
               contract=False),
        _model("products", "marts", refs=["stg_shop__orders"], description=None),
        _model("prospects", "segments", refs=["orders"], contract=False),
        _model("identity_splits", "intermediate", refs=["int_orders__enriched"], contract=False),
        _model("wide", "marts", refs=["int_orders__enriched"],
               code="select 1" + " join x using (a)" * (MAX_JOINS + 1)),
        # Four leaf marts on one model fan out; its segments would not count.
        *[_model(f"report_{i}", "marts", refs=["products"]) for i in range(4)],
        *[_model(f"segment_{i}", "segments", refs=["orders"]) for i in range(5)],
    ]
    found = check(_manifest(*GOOD, *bad))
    assert [(v.rule, v.model) for v in found] == sorted([
        ("source_outside_staging", "customer_scores"),
        ("staging_reads_model", "stg_crm__contacts"),
        ("intermediate_reads_mart", "int_customers__stats"),
        ("missing_description", "products"),
        ("public_without_contract", "prospects"),
        ("layer_prefix", "identity_splits"),
        ("too_many_joins", "wide"),
        ("fanout", "products"),
    ])
    reads = next(v for v in found if v.rule == "intermediate_reads_mart")
    assert reads.detail == "orders"  # the staging parent is fine; only the mart is named


def test_the_allowlist_passes_only_what_it_names_and_reports_stale_entries():
    violations = [Violation("intermediate_reads_mart", "a"), Violation("layer_prefix", "b")]
    allowed = {("intermediate_reads_mart", "a"): "waits for issue 14",
               ("too_long", "gone"): "was fixed"}
    new, stale = judge(violations, allowed)
    assert new == [Violation("layer_prefix", "b")]
    assert stale == [("too_long", "gone")]


def test_every_allowlist_entry_says_why():
    allowed = load_allowlist(ALLOWLIST)
    assert allowed and all(len(reason) > 20 for reason in allowed.values())
