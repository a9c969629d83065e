"""Cost per job: what a job's compute and its share of the control plane cost.

Pure rules over the shapes the Batch API describes (a job, its queue, its compute
environment), the instance catalog and a price table (data/prices.json, or a file of the
user's). Compute is priced per attempt as AWS bills what the job held:

* EC2 / SPOT: the instance type the provisioner launches for the job's shape (BEST_FIT
  over the environment's instanceTypes: the cheapest type that holds it), times the
  share of that instance the job reserves (the largest of its vCPU, memory and GPU
  shares: what it keeps others from using), times the run time; Spot at a fraction of
  On-Demand, never above the environment's bidPercentage.
* FARGATE / FARGATE_SPOT: vCPUs and GB of memory at Fargate's rates, each attempt billed
  for one minute at least.
* UNMANAGED: the instances are the user's, so there is no price to apply.

The control plane's share is what the cost meter (``python -m bench``) measured per job,
per extra attempt, per array child and per dependency edge. An array parent costs
nothing of its own: its children carry the cost, and its total is theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import arrays, capacity

if TYPE_CHECKING:
    from collections.abc import Iterable

ENDED = ("SUCCEEDED", "FAILED")
RUNNING_NOW = ("STARTING", "RUNNING")
MIB_PER_GB = 1024
COMPUTE_KEYS = ("fargate_vcpu_hour", "fargate_gb_hour")
FRACTION_KEYS = ("fargate_spot_fraction", "ec2_spot_fraction", "fargate_minimum_seconds")
CONTROL_KEYS = ("job", "retry_attempt", "array_child", "dependency_edge")


class PriceTableError(ValueError):
    """A price table that cannot be used; the message says which entry to fix."""


@dataclass(frozen=True)
class Prices:
    fargate_vcpu_hour: float
    fargate_gb_hour: float
    fargate_spot_fraction: float
    ec2_spot_fraction: float
    fargate_minimum_seconds: float
    job: float
    retry_attempt: float
    array_child: float
    dependency_edge: float

    @classmethod
    def from_json(cls, doc: Any, origin: str = "the price table") -> Prices:
        """From data/prices.json's layout; PriceTableError names what is missing or wrong."""
        if not isinstance(doc, dict):
            raise PriceTableError(f"{origin}: expected a JSON object with 'compute' and 'control_plane'")
        values: dict[str, float] = {}
        for section, keys, field in (("compute", COMPUTE_KEYS, "usd"), ("compute", FRACTION_KEYS, "value"),
                                     ("control_plane", CONTROL_KEYS, "usd")):
            entries = doc.get(section)
            if not isinstance(entries, dict):
                raise PriceTableError(f"{origin}: '{section}' must be an object of price entries")
            for key in keys:
                entry = entries.get(key)
                number = entry.get(field) if isinstance(entry, dict) else None
                if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
                    raise PriceTableError(f"{origin}: {section}.{key}.{field} must be a number >= 0, "
                                          f"as in {{\"{key}\": {{\"{field}\": 0.5}}}}")
                values[key] = float(number)
        for key in ("fargate_spot_fraction", "ec2_spot_fraction"):
            if values[key] > 1:
                raise PriceTableError(f"{origin}: compute.{key}.value is a fraction of On-Demand: 0 to 1")
        return cls(**values)


@dataclass(frozen=True)
class JobCost:
    """One job's cost. ``compute_usd`` is None when there is no price to apply (its
    ``basis`` says why); ``final`` once the job has ended and the figure cannot change."""

    compute_usd: float | None
    control_plane_usd: float
    seconds: float  # run time billed, over every attempt
    basis: str  # how the compute cost was found, for people
    final: bool

    @property
    def total_usd(self) -> float:
        return (self.compute_usd or 0.0) + self.control_plane_usd


def is_array_child(job: dict[str, Any]) -> bool:
    return "index" in (job.get("arrayProperties") or {})


def attempt_seconds(job: dict[str, Any], now_ms: int) -> list[float]:
    """The run time of each attempt: ended ones from their attempts entry, and the one
    running now up to ``now_ms``."""
    spans = [max(0, int(a.get("stoppedAt") or 0) - int(a.get("startedAt") or 0)) / 1000
             for a in job.get("attempts") or [] if a.get("startedAt") and a.get("stoppedAt")]
    if job.get("status") in RUNNING_NOW and job.get("startedAt"):
        spans.append(max(0, now_ms - int(job["startedAt"])) / 1000)
    return spans


def environment_name(job: dict[str, Any], queue: dict[str, Any] | None,
                     environments: dict[str, dict[str, Any]]) -> str | None:
    """The compute environment the job ran on: the one named by its container instance's
    cluster (AWS Batch names a cluster ``<environment>_Batch_<id>``), else the first of
    its queue's environments (a Fargate task has no container instance)."""
    arns = [(job.get("container") or {}).get("containerInstanceArn")]
    arns += [(a.get("container") or {}).get("containerInstanceArn") for a in reversed(job.get("attempts") or [])]
    for arn in filter(None, arns):
        parts = arn.rpartition(":container-instance/")[2].split("/")
        if len(parts) >= 2:  # noqa: PLR2004 - <cluster>/<id>: the ARN format that names the cluster
            cluster = parts[0]
            by_cluster = [n for n, ce in environments.items()
                          if (ce.get("ecsClusterArn") or "").rpartition("/")[2] == cluster]
            name = by_cluster[0] if by_cluster else cluster.split("_Batch_")[0]
            if name in environments:
                return name
    order = sorted((queue or {}).get("computeEnvironmentOrder") or [], key=lambda o: o.get("order", 0))
    for entry in order:
        name = entry["computeEnvironment"].rpartition("/")[2]
        if name in environments:
            return name
    return None


def _spot_fraction(ce: dict[str, Any], prices: Prices) -> float:
    bid = (ce.get("computeResources") or {}).get("bidPercentage")
    # bidPercentage 0 or unset means up to 100% of On-Demand, as AWS reads it.
    return min(prices.ec2_spot_fraction, bid / 100) if isinstance(bid, int) and bid > 0 else prices.ec2_spot_fraction


def compute_cost(job: dict[str, Any], ce: dict[str, Any] | None, catalog: capacity.Catalog,
                 prices: Prices, now_ms: int) -> tuple[float | None, float, str]:
    """(USD or None, seconds billed, basis) of the job's compute."""
    spans = attempt_seconds(job, now_ms)
    seconds = sum(spans)
    if arrays.is_parent(job):
        return None, 0.0, "an array's compute is its children's"
    node = "nodeDetails" in job
    if job.get("nodeProperties") and not node:
        return None, 0.0, "a multi-node parallel job's compute is its nodes'"
    if not spans:
        return 0.0, 0.0, "never ran"
    if ce is None:
        return None, seconds, "its compute environment is gone: no price to apply"
    resources = ce.get("computeResources") or {}
    kind = resources.get("type")
    shape = capacity.Shape.of(job.get("container") or {})
    if ce.get("type") == "UNMANAGED" or kind is None:
        return None, seconds, "UNMANAGED compute environment: the instances are yours, batchplane has no price"
    if kind in ("FARGATE", "FARGATE_SPOT"):
        billed = sum(max(s, prices.fargate_minimum_seconds) for s in spans if s > 0)
        gb = shape.memory_mib / MIB_PER_GB
        hourly = shape.mvcpus / 1000 * prices.fargate_vcpu_hour + gb * prices.fargate_gb_hour
        spot = prices.fargate_spot_fraction if kind == "FARGATE_SPOT" else 1.0
        basis = (f"{kind} {shape.mvcpus / 1000:g} vCPU x ${prices.fargate_vcpu_hour:g}/h + {gb:g} GB x "
                 f"${prices.fargate_gb_hour:g}/h" + (f", Spot at {spot:.0%}" if spot < 1 else "")
                 + f", {billed:.1f} s billed")
        return hourly * spot * billed / 3600, billed, basis
    types = capacity.instance_types(ce, catalog) or ()
    ranked = capacity.choose_types(list(types), [shape], "BEST_FIT")
    if not ranked:
        return None, seconds, "no instance type of its compute environment holds it"
    instance = ranked[0]
    shares = [shape.mvcpus / (instance.vcpus * 1000), shape.memory_mib / max(instance.usable_memory_mib, 1)]
    if shape.gpus and instance.gpus:
        shares.append(shape.gpus / instance.gpus)
    # A node of a multi-node parallel job holds its instance alone: all of it.
    share = 1.0 if node else min(1.0, max(shares))
    spot = _spot_fraction(ce, prices) if kind == "SPOT" else 1.0
    basis = (f"{instance.name} ${instance.price:g}/h On-Demand" + (f", Spot at {spot:.0%}" if spot < 1 else "")
             + f" x {share:.1%} of it ({shape.mvcpus / 1000:g} vCPU, {shape.memory_mib} MiB"
             + (", a node alone on it" if node else "") + f") x {seconds:.1f} s")
    return instance.price * spot * share * seconds / 3600, seconds, basis


def control_plane_cost(job: dict[str, Any], prices: Prices) -> float:
    """The control plane's requests the cost meter attributes to the job."""
    if arrays.is_parent(job):
        return 0.0  # each child's figure includes its share of the parent
    base = prices.array_child if is_array_child(job) else prices.job
    extra_attempts = max(0, len(job.get("attempts") or []) - 1)
    edges = len(job.get("dependsOn") or [])
    return base + extra_attempts * prices.retry_attempt + edges * prices.dependency_edge


def job_cost(job: dict[str, Any], ce: dict[str, Any] | None, catalog: capacity.Catalog,
             prices: Prices, now_ms: int) -> JobCost:
    usd, seconds, basis = compute_cost(job, ce, catalog, prices, now_ms)
    return JobCost(usd, control_plane_cost(job, prices), seconds, basis, job.get("status") in ENDED)


def array_cost(parent: dict[str, Any], children: Iterable[JobCost]) -> JobCost:
    """An array parent's cost: its children's summed (those with no price add nothing)."""
    kids = list(children)
    priced = [c.compute_usd for c in kids if c.compute_usd is not None]
    return JobCost(sum(priced) if priced else None, sum(c.control_plane_usd for c in kids),
                   sum(c.seconds for c in kids), f"{len(kids)} children, {len(priced)} of them priced",
                   parent.get("status") in ENDED and all(c.final for c in kids))


@dataclass
class CostTotal:
    """Jobs summed under one key (a queue, a share identifier)."""

    jobs: int = 0
    priced: int = 0  # of them, with a compute price
    compute_usd: float = 0.0
    control_plane_usd: float = 0.0
    seconds: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.control_plane_usd


def totals(rows: Iterable[tuple[str, JobCost]]) -> dict[str, CostTotal]:
    """Sum (key, cost) rows by key. Array parents must be left out by the caller, their
    children in: a parent's cost is its children's and would count twice."""
    out: dict[str, CostTotal] = {}
    for key, cost in rows:
        t = out.setdefault(key, CostTotal())
        t.jobs += 1
        t.priced += cost.compute_usd is not None
        t.compute_usd += cost.compute_usd or 0.0
        t.control_plane_usd += cost.control_plane_usd
        t.seconds += cost.seconds
    return out


def format_usd(usd: float | None) -> str:
    """Dollars for people: small amounts keep three significant digits ($0.0000123)."""
    if usd is None:
        return "-"
    if usd == 0 or usd >= 0.01:  # noqa: PLR2004 - display: from a cent up, dollars and cents
        return f"${usd:,.2f}"
    decimals = min(12, 2 - math.floor(math.log10(usd)))
    return f"${usd:.{decimals}f}"
