"""The portal in a real headless Chromium (Selenium) against uvicorn on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from fixtures_portal.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    chrome,
    click_and_wait,
    live_server,
    sign_in,
)
from fixtures_portal.build import build as build_fixture
from fixtures_portal.build import email_of

from personalization.portal import add_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="needs Debian chromium + chromium-driver (`make browser`)"),
]
USER, PASSWORD = "marketer", "browser-pass-1"
SECRET = "TOP-SECRET-OUTSIDE-EXPORTS"


@pytest.fixture(scope="module")
def portal_browser(tmp_path_factory):
    root = tmp_path_factory.mktemp("portal_browser")
    settings = build_fixture(root / "home")
    add_user(settings, USER, PASSWORD)
    (root / "home" / "secret.txt").write_text(SECRET)
    downloads = root / "downloads"
    downloads.mkdir()
    with live_server(settings) as base, chrome(root / "profile", downloads) as driver:
        yield driver, base, downloads, settings


def test_wrong_password_is_refused(portal_browser):
    from selenium.webdriver.common.by import By

    driver, base, _, _ = portal_browser
    driver.delete_all_cookies()
    sign_in(driver, base, USER, "not-the-password")
    assert driver.find_element(By.ID, "login-error").text == "Wrong user name or password."
    driver.get(f"{base}/")
    assert "/login" in driver.current_url


def test_marketer_journey(portal_browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, base, downloads, settings = portal_browser
    sign_in(driver, base, USER, PASSWORD)
    assert driver.find_element(By.ID, "exports").is_displayed()

    # Segment page: definition, two inline SVG charts, masked sample.
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "2026-01-06"))
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "cart_abandoners"))
    charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 2 and charts[0].size["width"] > 200
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart circle.point")) == 3
    assert "a***@example.com" in driver.page_source
    assert email_of("u01") not in driver.page_source

    # CSV download through the browser.
    driver.find_element(By.ID, "download-csv").click()
    target = downloads / "2026-01-06_cart_abandoners.csv"
    deadline = time.monotonic() + 15
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    expected = settings.exports_dir / "2026-01-06" / "segments" / "cart_abandoners.csv"
    assert target.read_bytes() == expected.read_bytes()

    # Email preview: pick the segment, then a contact (by unified_id), see the fallbacks.
    driver.get(f"{base}/preview")
    Select(driver.find_element(By.ID, "segment")).select_by_value("cart_abandoners")
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form.pick button"))
    Select(driver.find_element(By.ID, "contact")).select_by_value("u03")
    click_and_wait(driver, driver.find_element(By.ID, "show-preview"))
    assert "uid=u03" in driver.current_url and "@" not in driver.current_url
    fallbacks = driver.find_element(By.ID, "fallbacks").text
    assert all(t in fallbacks for t in ("FNAME", "RECO_2", "RECO_3"))
    driver.switch_to.frame(driver.find_element(By.ID, "email-frame"))
    try:
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Hi there," in body and "Unsubscribe" in body
    finally:
        driver.switch_to.default_content()

    # Path traversal through the browser is refused.
    for url in ("/exports/2026-01-06/files/..%2F..%2Fsecret.txt",
                "/exports/2026-01-06/files/segments/..%2F..%2F..%2Fsecret.txt"):
        driver.get(base + url)
        assert SECRET not in driver.page_source
        assert "no such file" in driver.page_source
