#!/usr/bin/env python3
"""Runs moto's own AWS Batch tests (``tests/peer/moto_batch``, copied from the moto sdist
named in its README.md) against a running batchplane and reports how many pass.

    python tests/peer/run_moto_batch.py                 # starts `batchplane local up --port 0 --memory`
    python tests/peer/run_moto_batch.py --endpoint http://127.0.0.1:4566
    python tests/peer/run_moto_batch.py --skip-docker   # skip those moto marks requires_docker
    python tests/peer/run_moto_batch.py -- -k jobs -x   # arguments after -- go to pytest

The tests are unchanged; ``moto_batch/conftest.py`` points their clients at the endpoint
and makes ``mock_aws`` a no-op; ``moto_batch/expectations.py`` lists the tests of moto's
internals (skipped) and those expected to fail, each with its reason: moto-only behaviour,
features batchplane does not offer (EKS) and known gaps (docs/compatibility.md, "moto's
Batch tests", has the AWS documentation for each). Exit status 0 when every other test
passes and no expected failure passes. ``tests/peer/test_moto_batch.py`` runs this in the
repository's pytest run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent / "moto_batch"
_LISTENING = re.compile(r"listening on (http://\S+?);")


def _clean_env() -> dict[str, str]:
    """This machine's environment without anything that would send a client elsewhere."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "BATCHPLANE_", "MOTO_", "TEST_SERVER_MODE", "TESTS_SKIP"))}


# Each AWS region has its own Batch endpoint, and a batchplane serves one region. Most of
# moto's Batch tests name eu-central-1 (their DEFAULT_REGION); the scheduling-policy tests
# name us-east-2 and check it in the ARNs, one test names us-east-1. Each group runs
# against a stack of its region (a stack refuses Batch requests signed for another).
# (test_batch_regions names two other regions on one endpoint: expected to fail, see expectations.py.)
_US_EAST_1 = "tests/test_batch/test_batch_job_queue.py::test_describe_job_queue_unknown_value"
PASSES: list[tuple[str, list[str]]] = [
    ("eu-central-1", ["tests/test_batch",
                      "--ignore", "tests/test_batch/test_batch_scheduling_policy.py",
                      "--ignore", "tests/test_batch/test_batch_tags_scheduling_policy.py",
                      "--deselect", _US_EAST_1]),
    ("us-east-2", ["tests/test_batch/test_batch_scheduling_policy.py",
                   "tests/test_batch/test_batch_tags_scheduling_policy.py"]),
    ("us-east-1", [_US_EAST_1]),
]


def _wait_listening(process: subprocess.Popen[str], deadline: float) -> str:
    """The endpoint ``local up`` prints once it listens; its later output is drained."""
    assert process.stdout is not None
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = _LISTENING.search(line)
        if match:
            # Keep reading: a full pipe would block the stack's logging.
            threading.Thread(target=seen.extend, args=(process.stdout,), daemon=True).start()
            return match.group(1)
    raise RuntimeError(f"batchplane local up did not start:\n{''.join(seen)}")


@contextmanager
def local_stacks(regions: list[str], timeout: float = 90) -> Iterator[list[str]]:
    """``batchplane local up --port 0 --memory``, one process per region, started and
    stopped together; yields their endpoints in the order of ``regions``."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "batchplane.cli", "local", "up", "--port", "0", "--memory"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**_clean_env(), "AWS_DEFAULT_REGION": region},
        )
        for region in regions
    ]
    try:
        deadline = time.monotonic() + timeout
        yield [_wait_listening(process, deadline) for process in processes]
    finally:
        running = [p for p in processes if p.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@dataclass
class Result:
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> passed/failed/xfailed/skipped
    messages: dict[str, str] = field(default_factory=dict)  # test id -> failure or skip message
    returncode: int = 0

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    def kinds(self, outcome: str) -> Counter[str]:
        """The tests of one outcome by the kind their reason starts with ("moto-only",
        "not supported", "batchplane gap", "not applicable"; "docker" for moto's
        requires_docker skips)."""
        return Counter(self.messages[name].split(":", 1)[0] if ":" in self.messages[name] else "docker"
                       for name, o in self.outcomes.items() if o == outcome)

    def summary(self) -> str:
        c, xfailed, skipped = self.counts, self.kinds("xfailed"), self.kinds("skipped")
        ran = sum(c.values()) - c["skipped"]
        return (f"moto's Batch tests against batchplane: {c['passed']} of {ran} pass, {c['failed']} fail; "
                f"expected to fail: {xfailed['moto-only']} moto-only, {xfailed['not supported']} not supported "
                f"(EKS), {xfailed['batchplane gap']} batchplane gaps; skipped: {skipped['not applicable']} "
                f"moto internals, {skipped['docker']} marked requires_docker")


def _parse_junit(path: Path, result: Result) -> Result:
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message", "") or (child.text or "")[-2000:]
            elif child.tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                message = child.get("message", "")
        # pytest writes one testcase per phase that failed; a failure in any phase counts.
        if result.outcomes.get(name) != "failed":
            result.outcomes[name] = outcome
            result.messages[name] = message
    return result


def run(endpoint: str, *, region: str = "us-east-1", selection: list[str] | None = None, skip_docker: bool = False,
        pytest_args: list[str] | None = None, stream: bool = True, result: Result | None = None) -> Result:
    """Run the tests (``selection``: pytest arguments naming them, default all) against
    ``endpoint``, adding their outcomes to ``result``; the pytest output goes to this
    process's stdout unless ``stream`` is False."""
    result = result or Result()
    env = _clean_env()
    env.update({
        "AWS_ENDPOINT_URL": endpoint,
        # The stack's default key (it verifies every Batch API signature).
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    if skip_docker:
        env["TESTS_SKIP_REQUIRES_DOCKER"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-c", str(HERE / "pytest.ini"), "--rootdir", str(HERE),
                   "-q", "-rfEX", f"--junitxml={junit}", *(selection or ["tests/test_batch"]), *(pytest_args or [])]
        completed = subprocess.run(command, cwd=HERE, env=env, text=True,
                                   stdout=None if stream else subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if not junit.exists():
            raise RuntimeError(f"pytest wrote no report (exit {completed.returncode}):\n{completed.stdout or ''}")
        _parse_junit(junit, result)
        result.returncode = max(result.returncode, completed.returncode if completed.returncode != 5 else 0)
        return result


def run_all(*, skip_docker: bool = False, pytest_args: list[str] | None = None, stream: bool = True) -> Result:
    """Every pass of PASSES against a fresh local stack of its region (all started at once)."""
    result = Result()
    with local_stacks([region for region, _ in PASSES]) as endpoints:
        for (region, selection), endpoint in zip(PASSES, endpoints, strict=True):
            run(endpoint, region=region, selection=selection, skip_docker=skip_docker, pytest_args=pytest_args,
                stream=stream, result=result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="run every test against this batchplane instead of a local stack per "
                        "region (the tests checking region-specific ARNs then fail unless it serves theirs)")
    parser.add_argument("--skip-docker", action="store_true", help="skip the tests moto marks requires_docker "
                        "(batchplane runs their jobs as local processes: they need no Docker here)")
    parser.add_argument("--json", type=Path, help="write every test's outcome here")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    if args.endpoint:
        result = run(args.endpoint, skip_docker=args.skip_docker, pytest_args=args.pytest_args)
    else:
        result = run_all(skip_docker=args.skip_docker, pytest_args=args.pytest_args)
    print(result.summary(), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"summary": result.summary(), "counts": dict(result.counts),
                                         "outcomes": result.outcomes, "messages": result.messages}, indent=1))
    return 0 if result.counts["failed"] == 0 and result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
