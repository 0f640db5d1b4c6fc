"""Trigger latency under load: the real intake and runner as separate processes, a sender
posting signed batches at a sustained rate, a cart rule with a one-minute wait.

    python benchmarks/triggers.py [--people 100000] [--rate 200] [--seconds 180]
                                  [--every 20] [--prefill 2000000] [--kill]

Measures intake latency per request (p50/p99), event accepted -> trigger sent after the
wait (p95 of sent_at - due_at), runner tick times, and with --kill that a SIGKILL of the
intake and of the runner mid-stream loses and doubles nothing. Writes
benchmarks/results/<date>-triggers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from personalization.config import load_settings  # noqa: E402
from personalization.intake import day_file, signature  # noqa: E402
from personalization.triggers import publish_context  # noqa: E402

SECRET = "bench-secret"
RULE_YML = """description: cart abandoned, one-minute wait (benchmark)
wait_minutes: 1
cooldown_hours: 24
max_age_hours: 24
merge_fields:
  FNAME: {from: first_name, fallback: there}
  CART_ITEMS: {from: item_names}
"""


def _warehouse(settings, people: int) -> None:
    """A warehouse with `people` contactable persons, each with a shop account."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(f"""create or replace table customer_profiles as
            select 'u' || i as unified_id, 'p' || i || '@example.com' as email,
                   sha256('p' || i || '@example.com') as email_sha256, 'Name' || i as first_name,
                   'en' as language, 'GB' as country, i % 10 <> 0 as is_contactable,
                   false as is_erased, false as is_unsubscribed, i % 10 <> 0 as is_opted_in
            from range({people}) t(i)""")
        con.execute(f"""create or replace table identity_map as
            select 'shop' as source, 'c' || i as source_id, 'u' || i as unified_id,
                   'email' as match_rule, 1.0 as match_score from range({people}) t(i)""")
        con.execute("""create or replace table products as
            select 'SKU-' || i as sku, 'Product ' || i as name, 'cat' as category,
                   10.0 + i as price, true as is_active from range(500) t(i)""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(settings, rules: Path) -> dict:
    return {**os.environ, "PERSONALIZATION_HOME": str(settings.home),
            "PERSONALIZATION_INTAKE_SECRET": SECRET, "PERSONALIZATION_TRIGGERS_DIR": str(rules),
            "PERSONALIZATION_TRIGGER_QUIET_HOURS": "[0, 0]",
            "PERSONALIZATION_TRIGGER_FREQUENCY_CAP": "1000"}


def _start_intake(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "personalization.cli", "intake", "serve",
                             "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("intake did not start")


def _start_runner(env: dict, every: float, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "personalization.cli", "triggers", "run",
                             "--every", str(every)], env=env, stdout=subprocess.DEVNULL,
                            stderr=log.open("a"))


def _prefill(settings, n: int) -> None:
    """`n` page views received yesterday: the runner's state as after a busy day."""
    if not n:
        return
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    path = day_file(settings.intake_dir, yesterday)
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.sql(f"""copy (select 'pre-' || i as event_id,
                        strftime(timestamp '{yesterday}' + to_seconds(i % 86400), '%Y-%m-%dT%H:%M:%SZ')
                            as occurred_at,
                        'ck' || (i % 500000) as anonymous_id, 'c' || (i % 100000) as customer_id,
                        'page_view' as event_type
                    from range({n}) t(i) order by i)
                   to '{path}' (format json)""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--batch", type=int, default=10, help="events per request")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--every", type=float, default=20.0, help="runner interval, seconds")
    parser.add_argument("--prefill", type=int, default=2_000_000)
    parser.add_argument("--cart-share", type=float, default=0.02)
    parser.add_argument("--kill", action="store_true", help="SIGKILL intake and runner mid-stream")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / "work" / "triggers")
    args = parser.parse_args()

    import shutil
    shutil.rmtree(args.work, ignore_errors=True)
    rules = args.work / "rules"
    rules.mkdir(parents=True)
    (rules / "cart_abandoned.yml").write_text(RULE_YML)
    (rules / "cart_abandoned.sql").write_text((REPO / "triggers" / "cart_abandoned.sql").read_text())
    settings = load_settings(home=args.work / "home", intake_secret=SECRET, triggers_dir=rules)
    _warehouse(settings, args.people)
    publish_context(date.today(), settings)
    _prefill(settings, args.prefill)
    env = _env(settings, rules)
    port = _free_port()
    intake = _start_intake(env, port)
    runner_log = args.work / "runner.log"
    runner = _start_runner(env, args.every, runner_log)

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    acknowledged: list[str] = []
    carts: dict[str, str] = {}  # customer_id -> first cart event id
    rng = random.Random(7)
    interval = args.batch / args.rate
    stop_at = time.monotonic() + args.seconds
    kills = {"intake": args.seconds * 0.4, "runner": args.seconds * 0.6} if args.kill else {}
    started = time.monotonic()
    seq = 0
    with httpx.Client(timeout=5) as http:
        next_send = time.monotonic()
        while time.monotonic() < stop_at:
            elapsed = time.monotonic() - started
            if "intake" in kills and elapsed > kills["intake"]:
                intake.send_signal(signal.SIGKILL)
                intake.wait()
                intake = _start_intake(env, port)
                del kills["intake"]
            if "runner" in kills and elapsed > kills["runner"]:
                runner.send_signal(signal.SIGKILL)
                runner.wait()
                runner = _start_runner(env, args.every, runner_log)
                del kills["runner"]
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            batch = []
            for _ in range(args.batch):
                seq += 1
                customer = f"c{rng.randrange(args.people)}"
                kind = "add_to_cart" if rng.random() < args.cart_share else "product_view"
                batch.append({"event_id": f"b{seq}", "occurred_at": now, "customer_id": customer,
                              "anonymous_id": f"ck{customer}", "event_type": kind,
                              "sku": f"SKU-{rng.randrange(500)}"})
            body = json.dumps(batch).encode()
            headers = {"X-Signature": signature(SECRET.encode(), body)}
            while True:  # at-least-once, like a real collector
                t = time.perf_counter()
                try:
                    r = http.post(f"http://127.0.0.1:{port}/events", content=body, headers=headers)
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 202:
                    acknowledged += [e["event_id"] for e in batch]
                    for e in batch:
                        if e["event_type"] == "add_to_cart":
                            carts.setdefault(e["customer_id"], e["event_id"])
                    break
                time.sleep(0.05)
            next_send += interval
            time.sleep(max(0.0, next_send - time.monotonic()))
    sent_seconds = args.seconds
    # Let the last carts come due (wait 1 min) and the runner take two more ticks.
    time.sleep(60 + 2 * args.every + 5)
    runner.send_signal(signal.SIGTERM)
    intake.send_signal(signal.SIGTERM)
    runner.wait(timeout=60)
    intake.wait(timeout=60)

    state = duckdb.connect(str(settings.triggers_state_dir / "state.duckdb"), read_only=True)
    lag = state.execute("""select quantile_cont(epoch(sent_at - due_at), [0.5, 0.95, 0.99]),
                                  count(*), count(*) filter (where status = 'sent')
                           from sends where status = 'sent'""").fetchone()
    per_person = state.execute("""select max(n) from (select unified_id, count(*) n from sends
                                  where status = 'sent' group by all)""").fetchone()[0]
    decided = state.execute("select count(*) from sends").fetchone()[0]
    state.close()
    stored = []
    for path in sorted(settings.intake_dir.glob("pixel/*/events.jsonl")):
        stored += [json.loads(line)["event_id"] for line in path.read_text().splitlines()
                   if '"b' in line]
    lat = sorted(latencies)
    ticks = [json.loads(line.split("decisions=", 1)[0].split("seconds=")[1].split()[0])
             for line in runner_log.read_text().splitlines() if "triggers_evaluated" in line]
    result = {
        "date": date.today().isoformat(), "people": args.people, "rate": args.rate,
        "batch": args.batch, "seconds": sent_seconds, "every": args.every,
        "prefill_events": args.prefill, "killed": args.kill,
        "load": os.getloadavg(),
        "requests": len(latencies), "statuses": statuses,
        "intake_latency_ms": {"p50": round(lat[len(lat) // 2] * 1000, 1),
                              "p99": round(lat[int(len(lat) * 0.99)] * 1000, 1),
                              "max": round(lat[-1] * 1000, 1)},
        "events_acknowledged": len(acknowledged),
        "events_stored": len(stored), "events_lost": len(set(acknowledged) - set(stored)),
        "events_doubled": len(stored) - len(set(stored)),
        "carts": len(carts), "decisions": decided, "sent": lag[2],
        "max_sends_per_person": per_person,
        "send_lag_after_due_seconds": {"p50": round(lag[0][0], 1), "p95": round(lag[0][1], 1),
                                       "p99": round(lag[0][2], 1)} if lag[0] else None,
        "runner_tick_seconds": {"n": len(ticks), "median": sorted(ticks)[len(ticks) // 2] if ticks else None,
                                "max": max(ticks) if ticks else None},
    }
    out = REPO / "benchmarks" / "results" / f"{date.today().isoformat()}-triggers{'-kill' if args.kill else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
