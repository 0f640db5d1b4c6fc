"""Every Great Expectations call lives here, so a GX API change touches one module."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.execution_engine import pandas_execution_engine  # noqa: E402

logger = logging.getLogger(__name__)
DOCS_SITE = "quality_gate"

# GX labels every pandas batch with an md5 over `hash_pandas_object` of the whole frame (for
# frames under this many bytes), a marker nothing here reads: most of the 1M lake gate (the
# night's 1.8M event ids; 2.6 -> 1.0 s in process). Checks are named by their frame instead.
pandas_execution_engine.HASH_THRESHOLD = 0


@dataclass
class Check:
    """One frame to validate against one suite. `key` names the column shown for failing rows."""

    name: str
    frame: pd.DataFrame
    suite: gx.ExpectationSuite
    key: str | None = None
    # Rows the frame stands for, when it holds only the rows that could fail (`suspects_sql`).
    rows: int | None = None


@dataclass
class Finding:
    """A failed expectation."""

    table: str
    expectation: str
    severity: str  # "error" or "warning"
    kwargs: dict[str, Any]
    observed: Any = None
    unexpected_count: int | None = None
    sample: list[Any] = field(default_factory=list)

    def line(self) -> str:
        what = ", ".join(f"{k}={v}" for k, v in self.kwargs.items() if k not in ("batch_id",))
        extra = f"; observed {self.observed}" if self.observed is not None else ""
        if self.unexpected_count:
            extra += f"; {self.unexpected_count} failing rows, e.g. {self.sample[:5]}"
        return f"{self.table}: {self.expectation}({what}){extra}"


def suspects_sql(suite: gx.ExpectationSuite, relation: str) -> str | None:
    """SQL selecting the rows of `relation` that some expectation of `suite` could reject.

    GX then judges only those rows, with the same verdict, failing rows and samples as on the
    whole relation (the frames of every exported segment, every identity record and every
    profile were most of those gates' time at 1M). Only row-level expectations with `mostly`
    1 allow it: not null (the null rows), in set (outside the set), between (outside the
    bounds, strict or not, compared in SQL as GX compares them) and unique or compound unique
    (every row whose value occurs twice). GX skips nulls in the last three, so their null
    rows are not suspects: a null-heavy column (the 712k persons of 1.16M without a VIP
    probability) would otherwise bring most of its rows to pandas. Any other expectation (a
    row count, a distribution, a `mostly` share) needs the whole relation: None.
    """
    import great_expectations.expectations as gxe

    from personalization.sql import identifier, literal

    windows, conditions = [], []
    for e in suite.expectations:
        if getattr(e, "mostly", 1) != 1 or getattr(e, "row_condition", None):
            return None
        column = identifier(e.column) if hasattr(e, "column") else None
        if isinstance(e, gxe.ExpectColumnValuesToNotBeNull):
            conditions.append(f"{column} IS NULL")
        elif isinstance(e, gxe.ExpectColumnValuesToBeInSet) and e.value_set:
            values = ", ".join(literal(v) for v in e.value_set)
            conditions.append(f"{column} NOT IN ({values})")
        elif isinstance(e, gxe.ExpectColumnValuesToBeBetween) and not _is_param(e):
            below, above = ("<=" if e.strict_min else "<"), (">=" if e.strict_max else ">")
            bounds = [f"{column} {below} {e.min_value!r}"] if e.min_value is not None else []
            bounds += [f"{column} {above} {e.max_value!r}"] if e.max_value is not None else []
            if bounds:
                conditions.append(" OR ".join(bounds))
        elif isinstance(e, gxe.ExpectColumnValuesToBeUnique | gxe.ExpectCompoundColumnsToBeUnique):
            keys = [e.column] if hasattr(e, "column") else list(e.column_list)
            count = identifier(f"__rows_with_{len(windows)}")
            partition = ", ".join(identifier(k) for k in keys)
            windows.append((count, f"count(*) OVER (PARTITION BY {partition}) AS {count}"))
            conditions.append(f"{count} > 1")
        else:
            return None
    if not conditions:
        return None
    inner = f"SELECT *{''.join(', ' + sql for _, sql in windows)} FROM {relation}"
    exclude = f" EXCLUDE ({', '.join(name for name, _ in windows)})" if windows else ""
    where = " OR ".join(f"({c})" for c in conditions)
    return f"SELECT *{exclude} FROM ({inner}) WHERE {where}"


def _is_param(e) -> bool:
    """A bound that is not a plain number (an evaluation parameter): no SQL for it."""
    return any(v is not None and (isinstance(v, bool) or not isinstance(v, int | float))
               for v in (e.min_value, e.max_value))


def _context(docs_dir: Path):
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.add_data_docs_site(site_name=DOCS_SITE, site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    return context


def run_checks(checks: list[Check], docs_dir: Path) -> tuple[list[Finding], int]:
    """Validate every check; return the failed expectations and how many were evaluated.

    Data Docs for these validations are written (added) under `docs_dir`, in one site build
    after the last check (a build per checkpoint re-rendered the index each time: most of a
    gate's time).
    """
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    context = _context(docs_dir)
    source = context.data_sources.add_or_update_pandas("frames")
    findings: list[Finding] = []
    evaluated = 0
    documented: list = []
    for check in checks:
        asset = source.add_dataframe_asset(check.name)
        batch = asset.add_batch_definition_whole_dataframe("all")
        suite = context.suites.add_or_update(check.suite)
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=check.name, data=batch, suite=suite))
        result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
        if check.key and check.key in check.frame.columns:
            result_format["unexpected_index_column_names"] = [check.key]
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=f"gate.{check.name}", validation_definitions=[validation],
            result_format=result_format))
        result = checkpoint.run(batch_parameters={"dataframe": check.frame})
        for identifier, run in result.run_results.items():
            documented += [identifier, ExpectationSuiteIdentifier(name=run.suite_name)]
            for r in run.results:
                evaluated += 1
                if r.success:
                    continue
                findings.append(_finding(check, r))
    if documented:
        context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=documented,
                                dry_run=False, build_index=True)
    return findings, evaluated


def _finding(check: Check, r) -> Finding:
    config = r.expectation_config
    severity = "error" if str(config.severity.value).lower() == "critical" else "warning"
    res = r.result or {}
    sample: list[Any] = []
    if res.get("partial_unexpected_index_list") and check.key:
        sample = [row.get(check.key) for row in res["partial_unexpected_index_list"]]
    elif res.get("partial_unexpected_list"):
        sample = list(res["partial_unexpected_list"])
    if r.exception_info and r.exception_info.get("raised_exception"):
        observed = f"error: {r.exception_info.get('exception_message')}"
    else:
        observed = res.get("observed_value")
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    return Finding(table=check.name, expectation=config.type, severity=severity, kwargs=kwargs,
                   observed=observed, unexpected_count=res.get("unexpected_count"),
                   sample=[str(s) for s in sample])
