"""Cost per job as a client finds it: the jobs, their queues and compute environments
read through the public Batch API, priced by the rules of domain/cost.py with the
instance catalog and a price table (data/prices.json, or the user's own file given with
``--prices`` or BATCHPLANE_PRICES). The CLI (describe, costs) and the dashboard use it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .domain import arrays, capacity
from .domain.cost import (
    CostTotal,
    JobCost,
    Prices,
    PriceTableError,
    array_cost,
    environment_name,
    job_cost,
    totals,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

PRICES_PATH = Path(__file__).with_name("data") / "prices.json"
PRICES_ENV = "BATCHPLANE_PRICES"
DESCRIBE_MAX = 100  # job IDs per DescribeJobs call
NO_SHARE = "(no share identifier)"


def load_prices(path: str | Path | None = None) -> Prices:
    """The price table at ``path``, else $BATCHPLANE_PRICES, else the packaged one."""
    chosen = Path(path or os.environ.get(PRICES_ENV) or PRICES_PATH).expanduser()
    try:
        doc = json.loads(chosen.read_text())
    except OSError as e:
        raise PriceTableError(f"cannot read the price table {chosen}: {e.strerror}") from e
    except ValueError as e:
        raise PriceTableError(f"the price table {chosen} is not valid JSON: {e}") from e
    return Prices.from_json(doc, str(chosen))


def now_ms() -> int:
    return int(time.time() * 1000)


def all_jobs(batch: Any, **request: Any) -> Iterator[dict[str, Any]]:
    """JobSummaries of every status (a ListJobs filter lists them all, newest first)."""
    pages = batch.get_paginator("list_jobs").paginate(
        **request, filters=[{"name": "AFTER_CREATED_AT", "values": ["0"]}], PaginationConfig={"PageSize": 1000})
    for page in pages:
        yield from page["jobSummaryList"]


def describe_all(batch: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(job_ids), DESCRIBE_MAX):
        out += batch.describe_jobs(jobs=job_ids[start:start + DESCRIBE_MAX])["jobs"]
    return out


class Costs:
    """Prices jobs; reads the compute environments and queues once per instance."""

    def __init__(self, batch: Any, prices: Prices, catalog: capacity.Catalog | None = None) -> None:
        self.batch = batch
        self.prices = prices
        self.catalog = catalog or capacity.default_catalog()
        self._environments: dict[str, dict[str, Any]] | None = None
        self._queues: dict[str, dict[str, Any]] = {}

    @property
    def environments(self) -> dict[str, dict[str, Any]]:
        if self._environments is None:
            pages = self.batch.get_paginator("describe_compute_environments").paginate()
            self._environments = {ce["computeEnvironmentName"]: ce for p in pages for ce in p["computeEnvironments"]}
        return self._environments

    def queue(self, name_or_arn: str) -> dict[str, Any] | None:
        if name_or_arn not in self._queues:
            found = self.batch.describe_job_queues(jobQueues=[name_or_arn])["jobQueues"]
            self._queues[name_or_arn] = found[0] if found else {}
        return self._queues[name_or_arn] or None

    def one(self, job: dict[str, Any], now: int | None = None) -> JobCost:
        """A job that is not an array parent."""
        name = environment_name(job, self.queue(job["jobQueue"]), self.environments)
        return job_cost(job, self.environments.get(name) if name else None, self.catalog, self.prices,
                        now or now_ms())

    def of(self, job: dict[str, Any], now: int | None = None) -> JobCost:
        """Any job; an array parent's is its children's (read with ListJobs + DescribeJobs)."""
        if not arrays.is_parent(job):
            return self.one(job, now)
        ids = [s["jobId"] for s in all_jobs(self.batch, arrayJobId=job["jobId"])]
        return array_cost(job, (self.one(child, now) for child in describe_all(self.batch, ids)))

    def summary(self, queues: list[str]) -> tuple[dict[str, CostTotal], dict[str, CostTotal]]:
        """Ended jobs of the queues summed per queue and per share identifier (array
        children counted, their parents not)."""
        by_queue: list[tuple[str, JobCost]] = []
        by_share: list[tuple[str, JobCost]] = []
        for queue in queues:
            ids = [s["jobId"] for status in ("SUCCEEDED", "FAILED")
                   for s in _paginate(self.batch, jobQueue=queue, jobStatus=status)]
            for job in describe_all(self.batch, ids):
                if arrays.is_parent(job):
                    continue
                cost = self.one(job)
                by_queue.append((queue, cost))
                by_share.append((job.get("shareIdentifier") or NO_SHARE, cost))
        return totals(by_queue), totals(by_share)


def _paginate(batch: Any, **request: Any) -> Iterator[dict[str, Any]]:
    for page in batch.get_paginator("list_jobs").paginate(**request, PaginationConfig={"PageSize": 1000}):
        yield from page["jobSummaryList"]


def cost_json(cost: JobCost) -> dict[str, Any]:
    return {"computeUsd": cost.compute_usd, "controlPlaneUsd": cost.control_plane_usd,
            "totalUsd": cost.total_usd, "billedSeconds": cost.seconds, "basis": cost.basis, "final": cost.final}


def total_json(total: CostTotal) -> dict[str, Any]:
    return {"jobs": total.jobs, "priced": total.priced, "computeUsd": total.compute_usd,
            "controlPlaneUsd": total.control_plane_usd, "totalUsd": total.total_usd, "billedSeconds": total.seconds}
