"""ESP sync reliability under the standard fault profile, against the local fake servers.

    python benchmarks/esp_faults.py [--runs 10] [--contacts 300]

For each of Mailchimp, SendGrid and Klaviyo: `--runs` fresh syncs (a new fake ESP each), with
the standard fault profile armed on every endpoint (a 429 with retry hint, a 503, a reset
after applying and a timeout after applying, per endpoint; `FakeEsp.arm_standard_faults`),
and as many fresh syncs that are killed (SIGKILL, a separate process) after a few writes and
then rerun under a new fault profile. Counts successes (the ESP holds exactly the export minus
holdout and erasures, nobody created twice, no list or field twice, nobody resubscribed, the
sync log holds every record as done), duplicate creates, HTTP retries and replayed writes.
Writes benchmarks/results/esp-faults-<date>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fake_esp.exports import contact, write_export  # noqa: E402
from fake_esp.harness import (  # noqa: E402
    FAKES,
    fast_settings,
    kill_after_writes,
    members,
    start_sync_process,
    sync_log,
)

from personalization.esp import sync  # noqa: E402
from personalization.exceptions import SyncError  # noqa: E402
from personalization.privacy.emails import email_sha256  # noqa: E402

DS = date(2026, 10, 1)
UNSUBSCRIBED = "person3@example.com"


def _export(settings, contacts: int) -> dict[str, set[str]]:
    cut = contacts * 2 // 3
    segments = {"vip": range(1, cut + 1), "cart": range(contacts // 3, contacts + 1)}
    erased = "person5@example.com"
    rows = {seg: [contact(i, holdout=(i % 20 == 0)) | {"LAST_VIEWED_AT": f"{seg}-{i}"}
                  for i in ids] for seg, ids in segments.items()}
    write_export(settings.exports_dir, DS, rows, erasures=[erased],
                 extra_columns={seg: ["LAST_VIEWED_AT"] for seg in rows})
    return {seg: {r["email"] for r in rs if not r["is_holdout"]} - {erased}
            for seg, rs in rows.items()}


def _wire(name: str, fake) -> None:
    prefix = f"PERSONALIZATION_{name.upper()}_"
    os.environ[prefix + "API_KEY"] = fake.api_key
    os.environ[prefix + "BASE_URL"] = fake.url
    if name == "mailchimp":
        os.environ[prefix + "LIST_ID"] = fake.list_id


def one_run(name: str, seed: int, contacts: int, kill: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp, FAKES[name]() as fake:
        _wire(name, fake)
        s = fast_settings(Path(tmp), esp_timeout_seconds=0.4, esp_backoff_max_seconds=0.05,
                          esp_max_retries=6)
        expected = _export(s, contacts)
        fake.seed_unsubscribed(UNSUBSCRIBED)
        fake.arm_standard_faults(seed=seed, delay=0.6)
        start = time.perf_counter()
        killed = False
        if kill:
            killed = kill_after_writes(start_sync_process(name, s, DS), fake, writes=4)
            fake.faults.clear()
            fake.arm_standard_faults(seed=seed + 10_000, delay=0.6)
        error = None
        try:
            report = sync(DS, name, s)
        except SyncError as e:
            report, error = None, str(e)
        seconds = time.perf_counter() - start
        names = Counter(fake.segment_names() if name == "mailchimp" else fake.list_names())
        field_names = Counter(n.lower() for n in (
            fake.merge_fields if name == "mailchimp" else
            fake.field_names() if name == "sendgrid" else []))
        people = set().union(*expected.values())
        wanted = {("@contact", email_sha256(e)) for e in people} | {
            (seg, email_sha256(e)) for seg, es in expected.items() for e in es}
        logged = set(sync_log(s.home, "select list_name, email_sha256 from esp_sync_log "
                                      "where kind = 'record' and status = 'ok'"))
        http = sync_log(s.home, "select count(*) filter (where attempt > 1), "
                                "count(*) filter (where http_status = 429), "
                                "count(*) filter (where error is not null) "
                                "from esp_sync_log where kind = 'http'")[0]
        exact = all(members(fake, seg) == es for seg, es in expected.items())
        duplicate_creates = (sum(v - 1 for v in fake.creates.values())
                             + sum(v - 1 for v in names.values())
                             + sum(v - 1 for v in field_names.values()))
        resubscribed = not fake.still_unsubscribed(UNSUBSCRIBED) or bool(
            getattr(fake, "status_change_attempts", []))
        ok = (error is None and report.status == "ok" and exact and duplicate_creates == 0
              and not resubscribed and wanted <= logged)
        return {"esp": name, "seed": seed, "kill": kill, "killed": killed, "success": ok,
                "error": error, "exact": exact, "duplicate_creates": duplicate_creates,
                "resubscribed": resubscribed, "log_complete": wanted <= logged,
                "http_retries": http[0], "http_429": http[1], "lost_or_reset": http[2],
                "contact_writes": sum(fake.upserts.values()), "persons": len(people),
                "seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--esp", action="append", choices=sorted(FAKES),
                        help="only these ESPs (default: all three)")
    args = parser.parse_args()
    esps = sorted(args.esp or FAKES)
    results = [one_run(name, seed, args.contacts, kill)
               for name in esps for kill in (False, True)
               for seed in range(args.runs)]
    suffix = "" if esps == sorted(FAKES) else "-" + "-".join(esps)
    out = REPO / "benchmarks" / "results" / f"esp-faults-{date.today().isoformat()}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    head = json.dumps({"runs": args.runs, "contacts": args.contacts, "load": os.getloadavg()})
    out.write_text(head[:-1] + ', "results": [\n' + ",\n".join(json.dumps(r) for r in results)
                   + "\n]}\n")  # one result per line
    print("| ESP | scenario | syncs | killed | successes | duplicate creates | resubscribed | "
          "HTTP retries (mean) | 429s (mean) | lost answers (mean) | extra contact writes "
          "(mean) | seconds (mean) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in esps:
        for kill in (False, True):
            rs = [r for r in results if r["esp"] == name and r["kill"] == kill]
            n = len(rs)

            def mean(key, rs=rs, n=n):
                return sum(r[key] for r in rs) / n
            extra = sum(r["contact_writes"] - r["persons"] for r in rs) / n
            print(f"| {name} | {'killed + rerun' if kill else 'one sync'} | {n} | "
                  f"{sum(r['killed'] for r in rs)} | {sum(r['success'] for r in rs)} | {sum(r['duplicate_creates'] for r in rs)} | "
                  f"{sum(r['resubscribed'] for r in rs)} | {mean('http_retries'):.1f} | "
                  f"{mean('http_429'):.1f} | {mean('lost_or_reset'):.1f} | {extra:.1f} | "
                  f"{mean('seconds'):.1f} |")
    failures = [r for r in results if not r["success"]]
    for r in failures:
        print("FAILED:", json.dumps(r))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
