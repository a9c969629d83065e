"""Points moto's own AWS Batch tests (the files under ``tests/``, copied unchanged from
the moto sdist named in README.md) at a running batchplane instead of moto's in-process
mock. This is the whole adaptation:

* every boto3 client goes to ``AWS_ENDPOINT_URL`` (set by ``tests/peer/run_moto_batch.py``
  to a ``batchplane local up`` stack; services other than Batch reach its emulator);
* ``moto.mock_aws`` is a no-op, as a decorator and as a context manager, so nothing is
  mocked in this process;
* ``TEST_SERVER_MODE`` is on, as in moto's own server-mode CI run: the tests then skip the
  checks that read moto's in-process state of other services;
* moto resets its state before every test (``mock_aws`` does, in server mode too), and
  the scheduling-policy tests each create one named ``test``: batchplane has no reset, so
  the scheduling policies a test created are deleted after it (with DeleteSchedulingPolicy);
* tests of moto's internals are skipped, and tests asserting behaviour that AWS Batch
  does not have, features batchplane does not offer (EKS) and its known gaps are expected
  to fail (strict xfail), each with the reason, from ``expectations.py``.

Run it with ``python tests/peer/run_moto_batch.py``, not with pytest directly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if not os.environ.get("AWS_ENDPOINT_URL"):
    raise RuntimeError("run moto's Batch tests with tests/peer/run_moto_batch.py: AWS_ENDPOINT_URL is not set")
os.environ["TEST_SERVER_MODE"] = "true"

import boto3  # noqa: E402
import moto  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from expectations import KINDS, NOT_APPLICABLE  # noqa: E402


class _NoMock:
    """``with mock_aws():`` and ``@mock_aws()`` that mock nothing."""

    def __call__(self, func):
        return func

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _no_mock(func=None, **_):
    """``mock_aws`` made a no-op: ``@mock_aws`` returns the function itself."""
    return func if callable(func) else _NoMock()


moto.mock_aws = _no_mock


def _keys(item: pytest.Item) -> list[str]:
    """The expectation keys naming ``item``, most specific first: ``file.py::test[param]``,
    ``file.py::test``, ``file.py``."""
    path, _, name = item.nodeid.split("tests/test_batch/", 1)[-1].partition("::")
    return [f"{path}::{name}", f"{path}::{name.split('[')[0]}", path]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for key in _keys(item):
            if key in NOT_APPLICABLE:
                item.add_marker(pytest.mark.skip(reason=f"not applicable: {NOT_APPLICABLE[key]}"))
                break
            kind = next((kind for kind, entries in KINDS.items() if key in entries), None)
            if kind:
                item.add_marker(pytest.mark.xfail(reason=f"{kind}: {KINDS[kind][key]}", strict=True))
                break


def _policies(batch) -> set[str]:
    return {p["arn"] for page in batch.get_paginator("list_scheduling_policies").paginate()
            for p in page["schedulingPolicies"]}


@pytest.fixture(autouse=True)
def _delete_new_scheduling_policies():
    """What moto's reset does for the one resource these tests create under a fixed name."""
    batch = boto3.client("batch")
    before = _policies(batch)
    yield
    for arn in _policies(batch) - before:
        try:
            batch.delete_scheduling_policy(arn=arn)
        except batch.exceptions.ClientException:
            pass  # still used by a job queue: left, as on AWS
