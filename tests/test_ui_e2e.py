"""The MLflow UI as the people who pick a framework see it, in a real browser.

A small sweep trains into a temporary store, a real ``mlflow server`` serves it on a free
loopback port, and Playwright drives Chromium (the system's: ``apt-get install chromium``, or
``ARENA_CHROMIUM=/path/to/chrome``; Playwright downloads no browser here) through the sweep tree,
a trial's description, charts, artifacts and model, and the comparison report. Screenshots go to
``test-artifacts/ui-e2e/`` (or ``$ARENA_TEST_ARTIFACTS/ui-e2e/``); the test prints the folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import require_module
from mlflow.tracking import MlflowClient

from framework_arena.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # its module fixtures train a sweep

EXPERIMENT = "framework-arena"
SERVER_START_TIMEOUT_S = 180  # a cold import of MLflow's server on a busy 2-core machine takes ~30 s
UI_TIMEOUT_MS = 30_000
BIN = Path(sys.executable).parent


def _chromium() -> str:
    """The system Chromium, or a skip outside CI that says how to get one (in CI: a failure)."""
    found = os.environ.get("ARENA_CHROMIUM") or next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if found:
        return found
    message = "No Chromium found: apt-get install -y chromium (what .ci/run does), or set ARENA_CHROMIUM to a Chrome/Chromium binary"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest) -> Path:
    root = Path(os.environ.get("ARENA_TEST_ARTIFACTS") or request.config.rootpath / "test-artifacts")
    folder = root / "ui-e2e"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\nUI screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def sweep(shootout: Path) -> dict[str, Any]:
    """The session's shoot-out (conftest.shootout: 3 framework families x 2 seeds): its store and runs."""
    _chromium()  # no browser: fail or skip before anything else
    uri = f"sqlite:///{shootout / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("arena.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6
    return {"folder": shootout, "uri": uri, "client": client, "experiment": exp, "parent": parent, "children": children}


@pytest.fixture(scope="module")
def server(sweep: dict[str, Any]) -> Iterator[str]:
    """A real ``mlflow server`` on the sweep's store; fails with its log if it does not come up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = sweep["folder"] / "mlflow-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", sweep["uri"], "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=sweep["folder"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers go with it at the end
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                what = f"exited with code {proc.returncode}" if proc.poll() is not None else f"did not answer {url}/health within {SERVER_START_TIMEOUT_S} s"
                pytest.fail(f"mlflow server {what}. Its log ({log_path}):\n{log_path.read_text(errors='replace')[-4000:]}", pytrace=False)
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = require_module("playwright.sync_api", "Playwright is in the dev extra: pip install -e '.[dev]'")
    # expect() waits 5 s by default, less than a loaded 2-core machine's UI takes to draw a page.
    sync_api.expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium())
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    context.close()


def _open_experiment(page: Any, url: str) -> None:
    """Home, then the experiment, in the UI's model-training view, with the assistant panel closed."""
    from playwright.sync_api import expect

    page.goto(f"{url}/#/experiments")
    page.get_by_text("Model training", exact=True).click()  # MLflow 3 opens on GenAI by default
    expect(page.get_by_role("link", name=EXPERIMENT)).to_be_visible()
    close = page.get_by_role("button", name="Close", exact=True)  # the MLflow Assistant side panel
    if close.is_visible():
        close.click()
    page.get_by_role("link", name=EXPERIMENT).click()


def test_sweep_tree_trial_description_charts_and_model(page: Any, server: str, sweep: dict[str, Any], shots: Path) -> None:
    from playwright.sync_api import expect

    parent, children = sweep["parent"], sweep["children"]
    # The sweep's own pick (the first best by job number: a tie in val/accuracy is plausible).
    best = next(r for r in children if r.info.run_id == parent.data.tags["arena.best_run_id"])
    assert best.data.metrics["val/accuracy"] == max(r.data.metrics["val/accuracy"] for r in children)
    other = next(r for r in children if r is not best)
    _open_experiment(page, server)

    # The experiment's description, and the sweep as one row whose trials open under it.
    expect(page.get_by_text("one run per trial")).to_be_visible()
    sweep_link = page.get_by_role("link", name=parent.info.run_name, exact=True)
    expect(sweep_link).to_be_visible()
    child_links = [page.get_by_role("link", name=r.info.run_name, exact=True) for r in children]
    for link in child_links:
        expect(link).to_have_count(0)  # nested: hidden until the parent is expanded
    page.get_by_role("gridcell").filter(has=sweep_link).get_by_role("button").click()
    for link in child_links:
        expect(link).to_be_visible()
    page.screenshot(path=shots / "1-sweep-tree.png")

    # The sweep's description: objective, best trial (a link), the table of trials.
    sweep_link.click()
    expect(page.get_by_text("Objective: maximize")).to_be_visible()
    expect(page.get_by_text(f"{len(children)} finished", exact=False)).to_be_visible()
    _show_more(page)
    page.screenshot(path=shots / "2-sweep-run.png")
    with page.context.expect_page() as opened:  # the UI opens a description's links in a new tab
        page.get_by_role("link", name=best.info.run_name, exact=True).first.click()
    page = opened.value

    # The trial: its description says framework, result and parent sweep; its parent is linked.
    expect(page.get_by_role("heading", name=best.info.run_name)).to_be_visible()
    assert best.info.run_id in page.url
    framework = best.data.tags["arena.framework"]
    description = page.get_by_text(re.compile(rf"^{framework}\b.* · mlp · digits — FINISHED$"))
    expect(description).to_be_visible()
    _show_more(page)
    expect(page.get_by_text(f"val/accuracy {best.data.metrics['val/accuracy']:.4f}", exact=False)).to_be_visible()
    expect(page.get_by_text(f"a trial of parent run {parent.info.run_id}", exact=False)).to_be_visible()
    expect(page.get_by_role("link", name=parent.info.run_name, exact=True)).to_be_visible()  # "Parent run"
    expect(page.get_by_text("Logged models (1)")).to_be_visible()
    page.screenshot(path=shots / "3-trial-overview.png")

    # Its charts, in sections by the part of each name before "/" (metric_names.py).
    page.get_by_role("tab", name="Model metrics").click()
    for section in ("train", "val", "test", "speed", "infer", "memory"):
        expect(page.get_by_text(section, exact=True)).to_be_visible()  # the section's title
    page.get_by_placeholder("Search metric charts").fill("accuracy")
    expect(page.get_by_text("speed", exact=True)).to_have_count(0)  # a section with no accuracy: filtered out
    for section in ("train", "val", "test"):
        page.get_by_text(section, exact=True).scroll_into_view_if_needed()  # charts render once in view
        expect(page.get_by_text(f"{best.info.run_name} ({section}/accuracy)")).to_be_visible()  # a line chart's legend
    page.screenshot(path=shots / "4-trial-charts.png")

    # Its artifacts: the learning-curve plot renders.
    _see_plot(page, "learning_curves.png")
    page.screenshot(path=shots / "5-trial-artifacts.png")

    # Its model, named after the trial (issue 16): the logged model's page lists the MLmodel file.
    page.get_by_role("tab", name="Overview").click()
    from framework_arena.names import label

    model_name = f"{label(best.data.tags['arena.framework'], best.data.tags.get('arena.backend'))}-{best.data.tags['arena.model']}"
    page.get_by_role("link", name=model_name, exact=True).last.click()
    expect(page).to_have_url(re.compile(r"/models/m-"))
    page.get_by_text("Artifacts", exact=True).last.click()
    expect(page.get_by_text("MLmodel", exact=True)).to_be_visible()
    page.screenshot(path=shots / "6-logged-model.png")

    # The other trial is a sibling under the same parent.
    page.goto(f"{server}/#/experiments/{sweep['experiment'].experiment_id}/runs/{other.info.run_id}")
    expect(page.get_by_text(f"a trial of parent run {parent.info.run_id}", exact=False)).to_be_visible()

    # The sweep's parent: one seed-aggregated curve per framework (tracking/seeds.py) renders.
    page.goto(f"{server}/#/experiments/{sweep['experiment'].experiment_id}/runs/{parent.info.run_id}")
    _see_plot(page, "seed_curves.png")
    page.screenshot(path=shots / "7-sweep-seed-curves.png")


def _see_plot(page: Any, name: str) -> None:
    """Opens the run's ``plots/<name>`` in the Artifacts tab and checks that the image loaded."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("plots", exact=True).click()
    page.get_by_text(name, exact=True).click()
    image = page.get_by_role("img", name=f"plots/{name}")
    expect(image).to_be_visible()
    assert image.evaluate("e => e.naturalWidth") > 0, f"plots/{name} did not load"


def _show_more(page: Any) -> None:
    """Expands a long description (the UI folds it after a few lines)."""
    more = page.get_by_text("Show more", exact=True)
    if more.count() and more.first.is_visible():
        more.first.click()


def test_comparison_report_renders_in_the_artifact_viewer(page: Any, server: str, sweep: dict[str, Any], shots: Path) -> None:

    name = "compare-ui-e2e"  # the shared store may hold other tests' comparison runs
    proc = subprocess.run(
        [
            str(BIN / "arena-compare"),
            f"tracking.uri={sweep['uri']}",
            f"tracking.experiment={EXPERIMENT}",
            f"report.run_name={name}",
            f"hydra.run.dir={shots / 'compare-output'}",
        ],
        cwd=sweep["folder"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client: MlflowClient = sweep["client"]
    [run] = client.search_runs([sweep["experiment"].experiment_id], f"tags.`arena.kind` = 'comparison' and attributes.run_name = '{name}'")
    assert {"report.html", "report.md", "ranking.csv", "criteria.csv"} <= {f.path for f in client.list_artifacts(run.info.run_id)}

    _check_report_in_ui(page, server, run.info.run_name, shots)


def _check_report_in_ui(page: Any, server: str, run_name: str, shots: Path) -> None:
    """The comparison run's description, and report.html rendered with its embedded plots."""
    from playwright.sync_api import expect

    _open_experiment(page, server)
    page.get_by_role("link", name=run_name, exact=True).click()
    expect(page.get_by_text("Framework comparison", exact=False).first).to_be_visible()  # its description
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("report.html", exact=True).click()
    report = page.frame_locator("iframe").first
    expect(report.locator("body")).to_contain_text(re.compile(r"torch|keras"))
    images = report.locator("img")
    assert images.count() > 0, "the report has no plot"
    for i in range(images.count()):
        src, width = images.nth(i).evaluate("e => [e.getAttribute('src'), e.naturalWidth]")
        assert src.startswith("data:image/") and width > 0, f"image {i} of report.html is not embedded and loaded: {src[:80]!r}"
    page.screenshot(path=shots / "7-comparison-report.png")
