"""The staff workflow in a real browser (headless Chromium): log in to the admin, start an
experiment with the admin action, evaluate it, and read its results page; and the pages a
new member of staff reads first (the overview, an A/B test's and a bandit's results, the
outcomes and effectiveness lists), each saved as a full-page screenshot in var/screenshots/
and checked as a reader sees it: no raw floats, objects titled by name, no horizontal
scroll at 1,280 px."""

import os
import re
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from experiments.models import Experiment
from tests.experiments.factories import load_catalog, make_experiment
from tests.personalization.factories import DEFAULT_PASSWORD, StaffFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
VIEWPORT_WIDTH = 1280
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
RAW_FLOAT = re.compile(r"\d\.\d{6,}")
# A title that is an id or starts with one: "3", "#3", "3 for everyone", "2 · CONTENT", "1:x".
ID_TITLE = re.compile(r"^\s*#?\d+\s*($|[·:→@]|for\b)")
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
        page = browser.new_page(viewport={"width": VIEWPORT_WIDTH, "height": 900})
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
    assert "Readiness: Not ready yet: 0 participants (20 needed)" in results
    assert "control" in results


def _log_in(page, base_url: str) -> None:
    staff = StaffFactory()
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def _read_as_a_person(page, name: str) -> dict:
    """Screenshot the page and check what a reader sees on it; returns what was measured."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    measured = page.evaluate(
        """() => ({
            scrollWidth: document.documentElement.scrollWidth,
            text: document.body.innerText,
            svgText: [...document.querySelectorAll("svg text, svg title")]
                .map(node => node.textContent).join("\\n"),
            titles: [...document.querySelectorAll(
                "#content h1, #content h2, .breadcrumbs, #result_list tbody th a, "
                + "#result_list tbody td.field-display_title a"
            )].map(node => node.innerText.trim()),
            clipped: [...document.querySelectorAll("#changelist .results, .results-chart")]
                .filter(node => node.scrollWidth > node.clientWidth + 1).length,
        })"""
    )
    raw = RAW_FLOAT.findall(measured["text"]) + RAW_FLOAT.findall(measured["svgText"])
    assert not raw, f"{name}: raw floats {raw[:5]} ({path})"
    id_titles = [title for title in measured["titles"] if ID_TITLE.search(title)]
    assert not id_titles, f"{name}: titles made of ids {id_titles[:5]} ({path})"
    crumb = [t for t in measured["titles"] if "›" in t]
    assert not any(ID_TITLE.search(t.rsplit("›", 1)[-1]) for t in crumb), (name, crumb)
    assert measured["scrollWidth"] <= VIEWPORT_WIDTH, (
        f"{name}: {measured['scrollWidth']} px wide at {VIEWPORT_WIDTH} px ({path})"
    )
    assert measured["clipped"] == 0, f"{name}: a table or chart scrolls sideways ({path})"
    print(f"{name}: {measured['scrollWidth']} px, {len(measured['titles'])} titles, {path}")
    return measured


def test_admin__pages_read_as_people_read_them(live_server, browser_page):
    """The seed's demo data (experiments evaluated, a bandit past its burn-in, a holdout,
    effectiveness windows), evaluated once more, read page by page."""
    from outcomes.models import Effectiveness, Outcome
    from outcomes.services.evaluation import experiment_evaluate

    call_command("seed", "--users", "60", "--days", "35", "--seed", "3", stdout=StringIO())
    ab = Experiment.objects.filter(
        experiment_type=Experiment.Type.AB_TEST, status=Experiment.Status.ACTIVE
    ).order_by("pk")[0]
    bandit = Experiment.objects.get(experiment_type=Experiment.Type.MULTI_ARMED_BANDIT)
    for experiment in (ab, bandit):
        experiment_evaluate(experiment=experiment)
    assert Outcome.objects.exists()
    assert Effectiveness.objects.exists()
    page = browser_page
    _log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/")
    overview = _read_as_a_person(page, "overview")
    assert page.locator("#overview").count() == 1
    assert page.locator("#overview svg").count() >= 2  # activity and an effectiveness trend
    assert "Active experiments" in overview["text"]
    assert bandit.name in overview["text"]
    assert "held out" in overview["text"]

    for name, experiment in (("ab-results", ab), ("bandit-results", bandit)):
        page.goto(f"{live_server.url}/admin/experiments/experiment/{experiment.pk}/change/")
        measured = _read_as_a_person(page, name)
        results = page.inner_text("#experiment-results")
        assert experiment.name in measured["titles"]
        assert "Variant metrics" not in measured["text"]
        assert "Readiness:" in results
        assert "Sample ratio:" in results
        assert "Against the control" in results
        assert page.locator("#means-chart svg").count() == 1
        assert (page.locator("#allocation-chart svg").count() == 1) == experiment.is_bandit
        fields = measured["text"]
        assert ("Algorithm" in fields) == experiment.is_bandit

    page.goto(f"{live_server.url}/admin/outcomes/outcome/")
    outcomes = _read_as_a_person(page, "outcomes")
    assert any(" by " in title for title in outcomes["titles"])

    page.goto(f"{live_server.url}/admin/outcomes/effectiveness/")
    effectiveness = _read_as_a_person(page, "effectiveness")
    assert any(" from " in title for title in effectiveness["titles"])

    page.goto(f"{live_server.url}/admin/experiments/decision/")
    _read_as_a_person(page, "decisions")
    page.goto(f"{live_server.url}/admin/experiments/experiment/")
    _read_as_a_person(page, "experiments")

    page.goto(f"{live_server.url}/admin/outcomes/offline/?context=MISSION")
    offline = _read_as_a_person(page, "offline-evaluation")
    assert "Per learner, level MEDIUM" in offline["text"]
    assert "Conservative for everyone" in offline["text"]
