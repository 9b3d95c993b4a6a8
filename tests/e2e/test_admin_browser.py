"""The staff workflow in a real browser (headless Chromium): log in to the admin, start an
experiment with the admin action, evaluate it, and read its results page."""

import os
import shutil

import pytest

from experiments.models import Experiment
from tests.experiments.factories import load_catalog, make_experiment
from tests.personalization.factories import DEFAULT_PASSWORD, StaffFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still synchronous and safe (Django's documented escape hatch for such tests).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if CHROMIUM is None:
        message = "Chromium is needed for the browser test (apt-get install chromium)"
        if os.environ.get("ATTUNE_REQUIRE_BROWSER"):
            pytest.fail(f"{message}; ATTUNE_REQUIRE_BROWSER is set, so it may not be skipped")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        yield page
        browser.close()


def test_admin__start_evaluate_and_read_results(live_server, browser_page):
    load_catalog()
    staff = StaffFactory()
    experiment = make_experiment(name="Pacing in the browser", start=False)
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    page.goto(f"{live_server.url}/admin/experiments/experiment/")
    page.check(f"input[name=_selected_action][value='{experiment.pk}']")
    page.select_option("select[name=action]", "start_experiments")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "start done" in page.inner_text(".messagelist")
    assert Experiment.objects.get(pk=experiment.pk).status == "ACTIVE"

    page.check(f"input[name=_selected_action][value='{experiment.pk}']")
    page.select_option("select[name=action]", "evaluate_now")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "evaluated" in page.inner_text(".messagelist")

    page.goto(f"{live_server.url}/admin/experiments/experiment/{experiment.pk}/change/")
    results = page.inner_text("#experiment-results")
    assert "Ready to complete" in results
    assert "control" in results
