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
    from personalization.portal import store

    export = store.load_export(settings, "latest")
    names = [s["name"] for s in export.segments] if export else []
    segment = "cart_abandoners" if "cart_abandoners" in names else (names[0] if names else "")
    first = store.members(export, segment, limit=3) if export and segment else []
    # A contact whose fallbacks fired, when the first rows have one.
    pick = next((m for m in first if m.get("FALLBACKS")), first[0] if first else None)
    uid = f"&uid={pick['unified_id']}" if pick else ""
    return [("exports", "/"), ("segment", f"/segments/{segment}"),
            ("email_preview", f"/preview?segment={segment}{uid}"), ("ab_results", "/ab")]


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
                height = driver.execute_script("return document.body.scrollHeight")
                driver.set_window_size(1360, min(max(height + 40, 700), 1800))
                driver.save_screenshot(str(OUT / f"{name}.png"))
                print(f"wrote {OUT / f'{name}.png'}")


if __name__ == "__main__":
    main()
