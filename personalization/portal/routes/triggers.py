"""Trigger log: what the trigger runner decided, per trigger and per hour (docs/triggers.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
from fastapi import APIRouter, Depends, Query, Request

from personalization import lake
from personalization.portal import charts
from personalization.portal.auth import current_user
from personalization.portal.users import User
from personalization.portal.web import render, settings_of
from personalization.privacy import encryption

router = APIRouter()


def _sends_glob(settings) -> str | None:
    if not lake.partition_files(settings, "triggers/sends"):
        return None
    return str(lake.partition_file(settings, "triggers/sends"))


def trigger_log(settings, hours: int) -> dict:
    """Decisions of the `hours` up to the latest one: totals per trigger, reasons, per hour.

    The window ends at the latest decision, not the clock, so a runner that stopped still
    shows what it last did (and the page says when that was).
    """
    glob = _sends_glob(settings)
    if glob is None:
        return {"totals": [], "reasons": [], "hourly": [], "since": None, "latest": None}
    con = duckdb.connect()
    try:
        encryption.configure(con, settings)  # the lake key, when encryption at rest is on
        con.execute(f"create temp view decided as select * from read_parquet('{glob}', "
                    f"hive_partitioning = false{encryption.parquet_read_options(settings)}) "
                    "where status <> 'sending'")
        latest = con.execute("select max(decided_at) from decided").fetchone()[0]
        since = (latest or datetime.now(UTC).replace(tzinfo=None)) - timedelta(hours=hours)
        # A view cannot take a parameter: a table of the window's rows (hours, not years).
        con.execute("create temp table sends as select * from decided where decided_at > ?",
                    [since])
        totals = con.execute("""
            select trigger, count(*) filter (where status = 'sent'),
                   count(*) filter (where status = 'suppressed'),
                   count(*) filter (where status = 'failed')
            from sends group by trigger order by trigger""").fetchall()
        reasons = con.execute("""
            select trigger, status, reason, count(*) from sends where status <> 'sent'
            group by all order by trigger, count(*) desc""").fetchall()
        hourly = con.execute("""
            select date_trunc('hour', decided_at) as hour, trigger,
                   count(*) filter (where status = 'sent'),
                   count(*) filter (where status = 'suppressed'),
                   count(*) filter (where status = 'failed')
            from sends group by all order by hour desc, trigger""").fetchall()
    finally:
        con.close()
    return {"totals": totals, "reasons": reasons, "hourly": hourly, "since": since,
            "latest": latest}


@router.get("/triggers")
def triggers_page(request: Request, hours: int = Query(48, ge=1, le=24 * 90),
                  user: User = Depends(current_user)):
    log = trigger_log(settings_of(request), hours)
    per_hour: dict[str, int] = {}
    for hour, _trigger, sent, _suppressed, _failed in log["hourly"]:
        label = hour.strftime("%m-%d %H:00")
        per_hour[label] = per_hour.get(label, 0) + sent
    chart = charts.line_chart(sorted(per_hour.items()), "emails sent per hour (all triggers)")
    return render(request, "triggers.html", log=log, hours=hours, chart=chart)
