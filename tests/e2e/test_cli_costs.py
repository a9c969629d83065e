"""Cost per job through the real ``batchplane`` entry point: ``describe`` shows a job's
cost, ``costs`` sums a queue's and a share's, a price table of the user's replaces the
packaged one; and ``batchplane dashboard`` serves the dashboard for an endpoint."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from batchplane.costing import PRICES_PATH

from .support import Env, cli_env, uniq, wait_done
from .test_cli_jobs import batchplane, ok, run_all

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def local(endpoint: str) -> dict[str, str]:
    return cli_env(AWS_ENDPOINT_URL=endpoint)


@pytest.fixture(scope="module")
def priced(batch: Any, env: Env) -> dict[str, Any]:
    """A queue of this module's own with one job of a share and one retried job, ended."""
    queue = uniq("cost-q")
    batch.create_job_queue(jobQueueName=queue, priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env.ec2_ce}])  # fmt: skip
    plain = batch.submit_job(jobName="cost-plain", jobQueue=queue, jobDefinition=env.jobdef,
                             containerOverrides={"command": ["sh", "-c", "sleep 0.2"]})["jobId"]  # fmt: skip
    retried = batch.submit_job(jobName="cost-retried", jobQueue=queue, jobDefinition=env.jobdef,
                               retryStrategy={"attempts": 2},
                               containerOverrides={"command": ["sh", "-c", "exit 1"]})["jobId"]  # fmt: skip
    jobs = {"plain": wait_done(batch, plain), "retried": wait_done(batch, retried)}
    assert jobs["plain"]["status"] == "SUCCEEDED" and len(jobs["retried"]["attempts"]) == 2
    return {"queue": queue, **jobs}


def test_describe_shows_the_jobs_cost(local: dict[str, str], priced: dict[str, Any]) -> None:
    plain, retried = priced["plain"]["jobId"], priced["retried"]["jobId"]
    as_json, as_table, retried_json = run_all(["describe", plain, "--output", "json"], ["describe", plain],
                                              ["describe", retried, "--output", "json"], env=local)
    cost = json.loads(ok(as_json).stdout)["cost"]
    prices = json.loads(PRICES_PATH.read_text())["control_plane"]
    assert cost["final"] and cost["computeUsd"] > 0 and cost["billedSeconds"] >= 0.2
    assert re.search(r"\b[a-z0-9]+\.[a-z0-9]+ \$[\d.]+/h On-Demand x", cost["basis"]), cost["basis"]
    assert cost["controlPlaneUsd"] == pytest.approx(prices["job"]["usd"])
    assert "compute cost" in ok(as_table).stdout and "control plane" in as_table.stdout
    again = json.loads(ok(retried_json).stdout)["cost"]
    assert again["controlPlaneUsd"] == pytest.approx(prices["job"]["usd"] + prices["retry_attempt"]["usd"])


def test_costs_sums_per_queue_and_share_with_the_users_prices(local: dict[str, str], priced: dict[str, Any],
                                                              tmp_path: Path) -> None:
    mine = json.loads(PRICES_PATH.read_text())
    mine["control_plane"]["job"]["usd"] = 1.0
    mine["control_plane"]["retry_attempt"]["usd"] = 0.5
    (tmp_path / "mine.json").write_text(json.dumps(mine))
    (tmp_path / "broken.json").write_text("{")
    summed, replaced, table, broken = run_all(
        ["costs", "--queue", priced["queue"], "--output", "json"],
        ["costs", "--queue", priced["queue"], "--output", "json", "--prices", str(tmp_path / "mine.json")],
        ["costs", "--queue", priced["queue"]],
        ["describe", priced["plain"]["jobId"], "--prices", str(tmp_path / "broken.json")],
        env=local,
    )
    queue = json.loads(ok(summed).stdout)["byQueue"][priced["queue"]]
    assert (queue["jobs"], queue["priced"]) == (2, 2) and queue["computeUsd"] > 0
    shares = json.loads(summed.stdout)["byShareIdentifier"]
    assert shares["(no share identifier)"]["jobs"] >= 2
    assert json.loads(ok(replaced).stdout)["byQueue"][priced["queue"]]["controlPlaneUsd"] == pytest.approx(2.5)
    assert priced["queue"] in ok(table).stdout and "CONTROL PLANE" in table.stdout
    assert broken.returncode == 1 and "is not valid JSON" in broken.stderr and "Traceback" not in broken.stderr


def test_dashboard_command_serves_an_endpoint(local: dict[str, str], priced: dict[str, Any]) -> None:
    server = batchplane("dashboard", "--port", "0", env=local)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+/dashboard/)", line)
        assert url, line + (server.stderr.read() if server.poll() is not None else "")
        with urllib.request.urlopen(url.group(1), timeout=30) as page:
            assert priced["queue"] in page.read().decode()
        job = priced["plain"]["jobId"]
        with urllib.request.urlopen(f"{url.group(1)}jobs/{job}", timeout=30) as page:
            body = page.read().decode()
        assert "cost-plain" in body and "SUCCEEDED" in body
    finally:
        server.kill()
        server.wait(timeout=10)
