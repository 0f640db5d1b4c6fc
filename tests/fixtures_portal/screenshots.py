"""Screenshots of the portal's main pages for docs/screenshots/ (headless Chromium).

    .venv/bin/python tests/fixtures_portal/screenshots.py            # the fixture export
    .venv/bin/python tests/fixtures_portal/screenshots.py --home .personalization

Signs in through the SSO header mode (set with Chrome's DevTools protocol), so no user is
added to a real home.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures_portal.browser import chrome, live_server  # noqa: E402
from fixtures_portal.build import build  # noqa: E402
from personalization.config import load_settings  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def pages(settings) -> list[tuple[str, str]]:
    """(name, path) of every page to shoot, picked from the latest export's own data."""
    from personalization.portal import store

    export = store.load_export(settings, "latest")
    names = [s["name"] for s in export.segments] if export else []
    segment = "cart_abandoners" if "cart_abandoners" in names else (names[0] if names else "")
    first = store.members(export, segment, limit=20) if export and segment else []
    # A contact whose copy is not English and with content blocks, when there is one.
    pick = next((m for m in first if m.get("LANGUAGE") not in (None, "", "en")
                 and m.get("BECAUSE_VIEWED")), first[0] if first else None)
    uid = f"&uid={pick['unified_id']}" if pick else ""
    empty = next((s["name"] for s in (export.segments if export else []) if not s.get("rows")), None)
    shots = [("exports", "/"), ("segment", f"/segments/{segment}"),
             ("email_preview", f"/preview?segment={segment}{uid}"),
             ("email_preview_mobile", f"/preview?segment={segment}{uid}&view=mobile"),
             ("ab_results", "/ab"), ("data_docs", "/quality/docs/index.html")]
    if empty:
        shots.append(("empty_segment", f"/segments/{empty}"))
    return shots


def lookup_email(settings) -> str | None:
    """Someone in a segment today who left another one since the previous export."""
    import duckdb

    from personalization.portal import store

    exports = store.all_exports(settings)[:2]
    rows = []
    for export in exports:
        for seg in export.segments:
            path = store.segment_file(export, seg["name"])
            if path is not None:
                rows.append(f"SELECT '{export.ds}' AS ds, '{seg['name']}' AS segment, email "
                            f"FROM read_parquet('{path}')")
    if len(exports) < 2 or not rows:
        return None
    latest, previous = exports[0].ds, exports[1].ds
    found = duckdb.connect().execute(f"""
        WITH m AS ({" UNION ALL ".join(rows)})
        SELECT p.email FROM m AS p
        WHERE p.ds = '{previous}'
          AND NOT EXISTS (SELECT 1 FROM m AS l WHERE l.ds = '{latest}' AND l.segment = p.segment
                          AND l.email = p.email)
          AND EXISTS (SELECT 1 FROM m AS l WHERE l.ds = '{latest}' AND l.email = p.email)
        ORDER BY p.email LIMIT 1""").fetchone()
    return found[0] if found else None


def _shoot(driver, path: Path) -> None:
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1360, min(max(height + 40, 700), 1800))
    driver.save_screenshot(str(path))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, help="an existing home with a published export")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = (load_settings(home=args.home, portal_auth="header") if args.home
                    else load_settings(home=build(Path(tmp) / "home").home, portal_auth="header"))
        OUT.mkdir(parents=True, exist_ok=True)
        with live_server(settings) as base, chrome(Path(tmp) / "profile", height=1000) as driver:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                                   {"headers": {"X-Forwarded-User": "marketer"}})
            for name, path in pages(settings):
                driver.get(base + path)
                _shoot(driver, OUT / f"{name}.png")
            email = lookup_email(settings)
            if email:  # typed into the form like a marketer would: never in a URL
                from selenium.webdriver.common.by import By

                driver.get(base + "/lookup")
                driver.find_element(By.ID, "lookup-email").send_keys(email)
                driver.find_element(By.ID, "lookup-submit").click()
                driver.find_element(By.ID, "lookup-result")
                _shoot(driver, OUT / "contact_lookup.png")

if __name__ == "__main__":
    main()
