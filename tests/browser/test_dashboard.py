"""The dashboard as a person uses it: headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) on the pages ``local up`` serves at /dashboard/,
while real jobs run. Each step waits for what a person would see (polled with a
deadline, never a fixed sleep) and saves a screenshot under $BATCHPLANE_ARTIFACTS
(default .ci/artifacts/browser/).

The jobs wait on gate files the test creates, so each screenshot catches the state it
names: a job RUNNING with its first log line, an array part done."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from batchplane.local.stack import LocalStack

from tests.e2e.support import ACCESS_KEY, SECRET_KEY, ec2_resources, make_client, uniq, wait_done

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("BATCHPLANE_ARTIFACTS") or Path(__file__).parents[2] / ".ci" / "artifacts") / "browser"
DEADLINE = 30.0

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # pragma: no cover - the dev extra installs it
    webdriver = None

pytestmark = [
    pytest.mark.skipif(webdriver is None, reason="selenium is not installed: pip install -e '.[dev]'"),
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="no headless Chromium: apt-get install chromium chromium-driver (.ci/run does, as root)"),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, credentials={ACCESS_KEY: SECRET_KEY}) as s:
        yield s


@pytest.fixture(scope="module")
def batch(stack: LocalStack) -> Any:
    return make_client("batch", stack.endpoint)


@pytest.fixture(scope="module")
def setup(batch: Any) -> dict[str, str]:
    ce, queue, jobdef = uniq("web-ec2"), uniq("web-q"), uniq("web-job")
    batch.create_compute_environment(computeEnvironmentName=ce, type="MANAGED",
                                     computeResources=ec2_resources(maxvCpus=4, instanceTypes=["c5"]))
    batch.create_job_queue(jobQueueName=queue, priority=5,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    batch.register_job_definition(jobDefinitionName=jobdef, type="container", containerProperties={
        "image": "busybox", "command": ["true"],
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]})
    return {"ce": ce, "queue": queue, "jobdef": jobdef}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,960", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(what: str, check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
        except Exception as e:  # noqa: BLE001 - an element swapped out mid-read: read again
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not seen within {deadline:.0f} s (last: {last!r})")


def shot(driver: Any, name: str) -> Path:
    """A screenshot of the whole page (the window grown to the page's height)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(960, min(int(height) + 40, 3000)))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a blank page is a few KB
    return path


def text(driver: Any, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def mark_page(driver: Any) -> None:
    """A mark on this page load: it survives htmx's swaps, not a reload."""
    driver.execute_script("window.__notReloaded = true")


def not_reloaded(driver: Any) -> bool:
    return driver.execute_script("return window.__notReloaded === true")


def gated(gate: Path, before: str, after: str) -> list[str]:
    return ["sh", "-c", f"echo {before}; while [ ! -e {gate} ]; do sleep 0.05; done; echo {after}"]


def test_dashboard(stack: LocalStack, batch: Any, setup: dict[str, str], browser: Any, tmp_path: Path) -> None:
    base = f"{stack.endpoint}/dashboard"
    queue, jobdef = setup["queue"], setup["jobdef"]

    # A job that logs a line, then waits for the test: its page shows it RUNNING with that
    # line, then SUCCEEDED with the next one, and the page is never reloaded.
    gate = tmp_path / "job-gate"
    job_id = batch.submit_job(jobName="nightly-report", jobQueue=queue, jobDefinition=jobdef, containerOverrides={
        "command": gated(gate, "loading-inputs", "report-written")})["jobId"]
    browser.get(f"{base}/jobs/{job_id}")
    mark_page(browser)
    until("the job RUNNING with its first log line",
          lambda: "RUNNING" in text(browser, "#job .badge") and "loading-inputs" in text(browser, "#log"))
    shot(browser, "03-job-running-log")
    gate.touch()
    until("the job SUCCEEDED with its last log line",
          lambda: "SUCCEEDED" in text(browser, "#job .badge") and "report-written" in text(browser, "#log"))
    assert not_reloaded(browser), "the page was reloaded: it must update in place"
    until("the job's compute cost", lambda: text(browser, "#compute-cost").startswith("$"))
    attempts = browser.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")
    assert len(attempts) == 1 and "0" in attempts[0].text  # one attempt, exit code 0
    until("the page to stop polling once the job ended", lambda: browser.execute_script(
        "return document.getElementById('live').dataset.live === 'false'"), deadline=10)
    shot(browser, "04-job-succeeded")

    # An array of 6 after a prepare step, with an aggregate after it: half the children
    # end at once, the rest wait for the gate.
    prepare = batch.submit_job(jobName="prepare", jobQueue=queue, jobDefinition=jobdef)["jobId"]
    array_gate = tmp_path / "array-gate"
    script = (f'echo child $AWS_BATCH_JOB_ARRAY_INDEX; [ "$AWS_BATCH_JOB_ARRAY_INDEX" -lt 3 ] || '
              f"while [ ! -e {array_gate} ]; do sleep 0.05; done")
    array_id = batch.submit_job(jobName="render-frames", jobQueue=queue, jobDefinition=jobdef,
                                arrayProperties={"size": 6}, dependsOn=[{"jobId": prepare}],
                                containerOverrides={"command": ["sh", "-c", script]})["jobId"]
    aggregate = batch.submit_job(jobName="aggregate", jobQueue=queue, jobDefinition=jobdef,
                                 dependsOn=[{"jobId": array_id}])["jobId"]

    browser.get(f"{base}/")
    until("the queue with its compute environment and vCPUs in use", lambda: (
        setup["ce"] in text(browser, f'tr[data-queue="{queue}"]')
        and float(text(browser, f'tr[data-environment="{setup["ce"]}"] .used')) >= 1))
    shot(browser, "01-queues")

    browser.get(f"{base}/jobs/{array_id}")
    mark_page(browser)
    bar = "#live .progress"
    until("the array half done, the rest RUNNING", lambda: (
        browser.find_element(By.CSS_SELECTOR, bar).get_attribute("data-done") == "3"
        and text(browser, '#histogram [data-status="RUNNING"] .count') == "3"))
    assert text(browser, bar).startswith("3/6 (50%)")
    shot(browser, "02-array-progress")
    array_gate.touch()
    until("the array's bar at 100%", lambda: browser.find_element(By.CSS_SELECTOR, bar).get_attribute(
        "data-percent") == "100" and "SUCCEEDED" in text(browser, "#job .badge"))
    assert text(browser, '#histogram [data-status="SUCCEEDED"] .count') == "6"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#children tbody tr")) == 6
    assert not_reloaded(browser), "the array page was reloaded: it must update in place"
    shot(browser, "05-array-done")

    # The graph of the array: prepare before it, the aggregate after it, and the
    # aggregate's status moves on in place.
    browser.get(f"{base}/jobs/{array_id}/graph")
    mark_page(browser)

    def node(job: str) -> Any:
        return browser.find_element(By.CSS_SELECTOR, f'#graph g[data-job-id="{job}"]')

    until("the aggregate SUCCEEDED in the graph", lambda: node(aggregate).get_attribute("data-status") == "SUCCEEDED")
    x = {j: node(j).rect["x"] for j in (prepare, array_id, aggregate)}
    assert x[prepare] < x[array_id] < x[aggregate], x
    edges = {(e.get_attribute("data-from"), e.get_attribute("data-to"))
             for e in browser.find_elements(By.CSS_SELECTOR, "#graph path.edge")}
    assert edges == {(prepare, array_id), (array_id, aggregate)}
    assert "6/6 done" in node(array_id).text and "aggregate" in node(aggregate).text
    assert not_reloaded(browser)
    shot(browser, "06-graph")
    assert wait_done(batch, aggregate)["status"] == "SUCCEEDED"

    # Filtering the jobs list, and the cost summed per queue.
    browser.get(f"{base}/jobs?queue={queue}&status=SUCCEEDED&name=render")
    rows = until("the filtered jobs", lambda: browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr[data-job-id]"))
    assert [r.get_attribute("data-job-id") for r in rows] == [array_id]
    assert "6/6 (100%)" in rows[0].text
    browser.get(f"{base}/costs")
    row = until("the queue's cost",
                lambda: browser.find_element(By.CSS_SELECTOR, f'#costs-by-queue tr[data-queue="{queue}"]'))
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1] == "9"  # the job, prepare, 6 children, aggregate (the array parent is its children)
    assert float(cells[5].lstrip("$")) > 0 and float(cells[6].lstrip("$")) > float(cells[5].lstrip("$"))  # compute too
    shot(browser, "07-costs")


def test_bad_pages_are_4xx_with_a_way_on(stack: LocalStack, browser: Any) -> None:
    browser.get(f"{stack.endpoint}/dashboard/jobs/no-such-job")
    assert "DescribeJobs knows none" in text(browser, ".error")
    browser.get(f"{stack.endpoint}/dashboard/jobs?status=DONE")
    assert "choose one of" in text(browser, ".error")
