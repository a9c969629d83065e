"""The e2e fixtures on a local stack whose store is DynamoDB on the emulator
(``--store dynamodb``): the same services on the table AWS runs, so a representative
subset of the e2e suite keeps that path honest beside the embedded default."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from batchplane.local.stack import LocalStack

from tests.e2e.conftest import batch, endpoint, env, logs, raw
from tests.e2e.support import ACCESS_KEY, CALLERS, SECRET_KEY

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["batch", "endpoint", "env", "logs", "raw"]


@pytest.fixture(scope="package")
def stack() -> Iterable[LocalStack]:
    with LocalStack(port=0, store="dynamodb", credentials={ACCESS_KEY: SECRET_KEY, **CALLERS}) as s:
        yield s
