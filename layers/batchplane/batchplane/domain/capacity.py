"""Capacity planning for MANAGED EC2 and SPOT compute environments: how many vCPUs each
environment should have, on which instance types. Pure and deterministic; the provisioner
(service/provisioning.py) feeds it the jobs and applies the plan to Auto Scaling.

Demand
    A RUNNABLE job counts for the first ENABLED environment of its queue's
    computeEnvironmentOrder that can run it (same platform, within maxvCpus, some
    instance type fits it) and still has room; when none has room it counts for the first
    that could run it, so a full environment stays full rather than spilling forever.
    STARTING and RUNNING jobs count for the environment they run in.

Instance types (``allocationStrategy``)
    BEST_FIT
        The cheapest type that fits the largest waiting job (on every dimension: vCPUs,
        memory, GPUs), alone: the environment waits for that type.
    BEST_FIT_PROGRESSIVE
        That type first, then every other type large enough, lowest price per vCPU first.
    SPOT_CAPACITY_OPTIMIZED, SPOT_PRICE_CAPACITY_OPTIMIZED
        Every type large enough, lowest On-Demand price per vCPU first. Without live Spot
        capacity data batchplane does not rank pools itself: it hands Auto Scaling a broad
        list and lets its capacity-optimized / price-capacity-optimized strategies pick
        the pools with spare capacity (and, for the latter, a low price) at launch time.
    Progressive and Spot lists leave out types larger than the whole demand (a 96-vCPU
    instance for a 2-vCPU job), and Auto Scaling takes at most 40 types.
    ``instanceTypes`` entries are families ("m5"), sizes ("m5.xlarge") or the keywords
    "optimal" and "default_x86_64", resolved against the catalog in data/instances.json.

Desired vCPUs
    The instance capacity the demand occupies: each kind of job packed onto the first
    listed type that fits it (how many fit one instance, by vCPUs, memory and GPUs), in
    whole instances of the first type, then clamped to [minvCpus, maxvCpus].
    desiredvCpus itself never exceeds maxvCpus (UpdateComputeEnvironment requires
    min <= desired <= max). The Auto Scaling group weighs each type by its vCPUs and
    launches whole instances until it has at least the desired vCPUs, so the capacity
    it runs may overshoot maxvCpus by less than one instance, as AWS Batch documents; it
    must, or a maxvCpus that is not a multiple of the instance size could never be used.
    A DISABLED environment never scales out. Scale-in waits until demand has stayed
    below the current desiredvCpus for a while (``settle``), and an idle environment ends
    at minvCpus.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ClientException
from . import compute, jobdefs

CATALOG_PATH = Path(__file__).resolve().parents[1] / "data" / "instances.json"
# Memory a container instance offers jobs: the ECS agent registers what the kernel reports
# (about 97.5% of the installed memory: 7985 of 8192 MiB on an m4.large, in AWS Batch's
# "Compute resource memory management"), less the 32 MiB the Batch AMI reserves. A job
# asking for all 8192 MiB therefore needs the next size up, as on AWS Batch.
ECS_MEMORY_SHARE = 0.97
ECS_RESERVED_MIB = 32
MAX_INSTANCE_TYPES = 40  # overrides an Auto Scaling mixed instances policy accepts
SPOT_STRATEGIES = {  # Batch allocationStrategy -> Auto Scaling SpotAllocationStrategy
    "BEST_FIT": "lowest-price",
    "BEST_FIT_PROGRESSIVE": "lowest-price",
    "SPOT_CAPACITY_OPTIMIZED": "capacity-optimized",
    "SPOT_PRICE_CAPACITY_OPTIMIZED": "price-capacity-optimized",
}


@dataclass(frozen=True)
class Shape:
    """What one job needs from an instance."""

    mvcpus: int  # thousandths of a vCPU
    memory_mib: int
    gpus: int = 0

    @classmethod
    def of(cls, container: dict[str, Any]) -> Shape:
        need = jobdefs.requirements(container)
        return cls(
            mvcpus=int(round(need["VCPU"] * 1000)),
            memory_mib=int(math.ceil(need["MEMORY"])),
            gpus=int(math.ceil(need.get("GPU", 0))),
        )


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    gpus: int
    price: float  # On-Demand USD per instance-hour (catalog region)

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def usable_memory_mib(self) -> int:
        return int(self.memory_mib * ECS_MEMORY_SHARE) - ECS_RESERVED_MIB

    @property
    def price_per_vcpu(self) -> float:
        return self.price / self.vcpus

    def slots(self, shape: Shape) -> int:
        """How many jobs of ``shape`` one instance holds (0: it does not fit)."""
        count = self.vcpus * 1000 // max(shape.mvcpus, 1)
        if shape.memory_mib > 0:
            count = min(count, self.usable_memory_mib // shape.memory_mib)
        if shape.gpus > 0:
            count = min(count, self.gpus // shape.gpus)
        return max(count, 0)

    def fits(self, shape: Shape) -> bool:
        return self.slots(shape) > 0


def _cost_key(t: InstanceType) -> tuple[float, int, str]:
    return (t.price, t.vcpus, t.name)


def _per_vcpu_key(t: InstanceType) -> tuple[float, float, str]:
    return (t.price_per_vcpu, t.price, t.name)


@dataclass(frozen=True)
class Catalog:
    """The instance types batchplane knows, and what the keywords stand for."""

    types: dict[str, InstanceType]
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Catalog:
        types = {
            name: InstanceType(name, int(t["vcpus"]), int(t["memoryMiB"]), int(t.get("gpus", 0)),
                               float(t["onDemandUsdPerHour"]))
            for name, t in doc["instanceTypes"].items()
        }
        keywords = {k: tuple(v) for k, v in (doc.get("keywords") or {}).items()}
        return cls(types=types, keywords=keywords)

    def resolve(self, entries: list[str]) -> tuple[list[InstanceType], list[str]]:
        """The known types ``instanceTypes`` names (in catalog order, no repeats) and the
        entries that name nothing the catalog has."""
        wanted: set[str] = set()
        unknown: list[str] = []
        for entry in entries:
            families = self.keywords.get(entry, (entry,))
            found = {n for n, t in self.types.items() if n == entry or t.family in families}
            if found:
                wanted |= found
            else:
                unknown.append(entry)
        return [t for n, t in self.types.items() if n in wanted], unknown


@cache
def default_catalog() -> Catalog:
    """data/instances.json, read once per process."""
    return Catalog.from_json(json.loads(CATALOG_PATH.read_text()))


def check_instance_types(entries: list[str], catalog: Catalog) -> None:
    """Refuse ``instanceTypes`` entries that name nothing batchplane can launch, as AWS
    refuses types it does not offer ("Instance type can only be one of [...]"): an
    environment of unknown types would leave its jobs RUNNABLE for ever."""
    unknown = catalog.resolve(entries)[1]
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        raise ClientException(
            f"computeResources.instanceTypes: {names} {'is' if len(unknown) == 1 else 'are'} not "
            f"an instance type or family batchplane can launch. Use a family ({_families(catalog)}), "
            f"a size of one such as m5.xlarge, or {' / '.join(sorted(catalog.keywords))}."
        )


def instance_types(ce: dict[str, Any], catalog: Catalog) -> tuple[InstanceType, ...] | None:
    """The types a compute environment may launch; None where batchplane launches no
    instances (Fargate, UNMANAGED)."""
    if not compute.provisioned(ce):
        return None
    return tuple(catalog.resolve(list(ce["computeResources"].get("instanceTypes") or []))[0])


# -- which environment a waiting job counts for -----------------------------------------


@dataclass
class Environment:
    """A compute environment as the scheduler places jobs on it and the provisioner
    counts demand for it (the one view of a compute environment outside its document)."""

    name: str  # its ARN
    enabled: bool  # ENABLED and VALID
    platform: str  # "EC2" or "FARGATE"
    max_mvcpus: int | None  # None: no ceiling (UNMANAGED without unmanagedvCpus)
    # The instance types it may launch (MANAGED EC2/SPOT); None: no shapes to check
    # (Fargate, UNMANAGED).
    types: tuple[InstanceType, ...] | None = None
    used_mvcpus: int = 0  # what its attempts hold now (the scheduler's round adds to it)

    def fits(self, mvcpus: int) -> bool:
        """Room for ``mvcpus`` more now."""
        return self.max_mvcpus is None or self.used_mvcpus + mvcpus <= self.max_mvcpus

    def could_ever_fit(self, shape: Shape) -> bool:
        """Within maxvCpus, and on one instance of some type it may launch (vCPUs, memory
        and GPUs at once): a job that fits no instance would wait forever."""
        if self.max_mvcpus is not None and shape.mvcpus > self.max_mvcpus:
            return False
        return not self.types or any(t.fits(shape) for t in self.types)

    def can_run(self, platform: str, shape: Shape) -> bool:
        return self.enabled and platform == self.platform and self.could_ever_fit(shape)


def environment(doc: dict[str, Any], catalog: Catalog, used_mvcpus: int = 0) -> Environment:
    """The view of a compute environment's document (DescribeComputeEnvironments shape)."""
    ceiling = compute.max_vcpus(doc)
    return Environment(
        name=doc["computeEnvironmentArn"],
        enabled=doc["state"] == "ENABLED" and doc["status"] == "VALID",
        platform=compute.platform(doc),
        max_mvcpus=None if ceiling is None else ceiling * 1000,
        types=instance_types(doc, catalog),
        used_mvcpus=used_mvcpus,
    )


@dataclass(frozen=True)
class Waiting:
    """A RUNNABLE job."""

    shape: Shape
    platform: str = "EC2"


@dataclass(frozen=True)
class QueueDemand:
    name: str
    priority: int
    environments: tuple[str, ...]  # ARNs in computeEnvironmentOrder
    waiting: tuple[Waiting, ...]  # in dispatch order


def assign(
    queues: list[QueueDemand],
    environments: dict[str, Environment],
    active: dict[str, list[Shape]],
) -> dict[str, list[Shape]]:
    """The waiting jobs each environment should make room for (see the module docstring).
    Jobs that no environment of their queue can ever run count nowhere."""
    room: dict[str, float] = {
        arn: math.inf if e.max_mvcpus is None
        else e.max_mvcpus - sum(s.mvcpus for s in active.get(arn, []))
        for arn, e in environments.items()
    }
    out: dict[str, list[Shape]] = {}
    for q in sorted(queues, key=lambda q: (-q.priority, q.name)):
        envs = [environments[a] for a in q.environments if a in environments]
        for job in q.waiting:
            able = [e for e in envs if e.can_run(job.platform, job.shape)]
            if not able:
                continue
            target = next((e for e in able if room[e.name] >= job.shape.mvcpus), able[0])
            room[target.name] -= job.shape.mvcpus
            out.setdefault(target.name, []).append(job.shape)
    return out


# -- instance types and desired vCPUs of one environment --------------------------------


def largest(shapes: list[Shape]) -> Shape:
    """A shape as large as each of ``shapes`` on every dimension."""
    return Shape(
        mvcpus=max((s.mvcpus for s in shapes), default=0),
        memory_mib=max((s.memory_mib for s in shapes), default=0),
        gpus=max((s.gpus for s in shapes), default=0),
    )


def choose_types(
    available: list[InstanceType], waiting: list[Shape], strategy: str
) -> list[InstanceType]:
    """Instance types to launch for ``waiting`` jobs, preferred first; empty when none of
    ``available`` fits any of them."""
    biggest = largest(waiting)
    fitting = [t for t in available if t.fits(biggest)]
    if not fitting and waiting:
        # No single type fits every dimension at once (one job wants GPUs, another 700 GiB):
        # serve the largest job by GPUs, then vCPUs, then memory.
        top = max(waiting, key=lambda s: (s.gpus, s.mvcpus, s.memory_mib))
        fitting = [t for t in available if t.fits(top)]
    if not fitting:
        return []
    best = min(fitting, key=_cost_key)
    if strategy == "BEST_FIT":
        return [best]
    return [best, *sorted((t for t in fitting if t is not best), key=_per_vcpu_key)]


def occupied_vcpus(shapes: list[Shape], ranked: list[InstanceType]) -> float:
    """vCPUs of instance capacity ``shapes`` occupy, each kind of job packed onto the first
    type of ``ranked`` that fits it. A job no type fits (an instance type removed while it
    ran) counts its own vCPUs."""
    total = 0.0
    for shape, count in Counter(shapes).items():
        host = next((t for t in ranked if t.fits(shape)), None)
        if host is None:
            total += count * shape.mvcpus / 1000
        else:
            total += count * host.vcpus / host.slots(shape)
    return total


def whole_instances(vcpus: float, instance: InstanceType) -> int:
    """Instances of ``instance`` that give at least ``vcpus``."""
    return math.ceil(round(vcpus / instance.vcpus, 9))


@dataclass(frozen=True)
class Plan:
    """What one environment's Auto Scaling group should look like."""

    min_vcpus: int
    max_vcpus: int
    desired_vcpus: int  # before ``settle``
    instance_types: tuple[InstanceType, ...]  # preferred first; empty: nothing to launch
    spot: bool = False
    spot_strategy: str | None = None  # Auto Scaling SpotAllocationStrategy
    spot_pools: int | None = None  # SpotInstancePools (lowest-price only)
    spot_max_price: str | None = None  # USD per vCPU-hour (types are weighted by vCPUs)
    gpu: bool = False  # some type has GPUs: use the GPU-enabled ECS AMI
    problem: str | None = None  # why the environment cannot be provisioned

    @property
    def instances(self) -> int:
        """Instances of the first type that cover ``desired_vcpus``."""
        if not self.instance_types:
            return 0
        return whole_instances(self.desired_vcpus, self.instance_types[0])


def clamp(value: int, floor: int, ceiling: int) -> int:
    return max(floor, min(value, ceiling))


def plan(
    resources: dict[str, Any],
    *,
    waiting: list[Shape],
    active: list[Shape],
    catalog: Catalog,
) -> Plan:
    """The plan for one MANAGED EC2/SPOT environment (its ``computeResources``), given the
    waiting jobs it should make room for and the jobs it runs."""
    floor = int(resources.get("minvCpus", 0))
    ceiling = int(resources["maxvCpus"])
    current = clamp(int(resources.get("desiredvCpus", floor)), floor, ceiling)
    spot = resources["type"] == "SPOT"
    strategy = resources.get("allocationStrategy", "BEST_FIT")
    available, unknown = catalog.resolve(list(resources.get("instanceTypes") or []))
    if not available:
        return Plan(floor, ceiling, current, (), spot=spot, problem=(
            f"CLIENT_ERROR - none of the instanceTypes {', '.join(unknown) or '(none)'} is an "
            f"instance type or family batchplane can launch ({_families(catalog)}, or "
            f"{' / '.join(sorted(catalog.keywords))})."
        ))
    waiting = [s for s in waiting if any(t.fits(s) for t in available)]
    chosen = choose_types(available, waiting, strategy)
    first = chosen[0]
    ranked = chosen + sorted((t for t in available if t not in chosen), key=_cost_key)
    needed = occupied_vcpus(waiting + active, ranked)
    desired = clamp(whole_instances(needed, first) * first.vcpus, floor, ceiling)
    if strategy != "BEST_FIT":
        # Offer no instance larger than the whole demand: Auto Scaling could otherwise
        # satisfy 2 vCPUs with a 96-vCPU instance.
        limit = max(first.vcpus, desired)
        chosen = [t for t in chosen if t is first or t.vcpus <= limit]
    chosen = chosen[:MAX_INSTANCE_TYPES]
    out = Plan(floor, ceiling, desired, tuple(chosen), spot=spot,
               gpu=any(t.gpus for t in chosen))
    if not spot:
        return out
    pools = 1 if strategy == "BEST_FIT" else min(2, len(chosen))
    return Plan(
        floor, ceiling, desired, tuple(chosen), spot=True,
        spot_strategy=SPOT_STRATEGIES[strategy],
        spot_pools=pools if SPOT_STRATEGIES[strategy] == "lowest-price" else None,
        spot_max_price=spot_max_price(resources.get("bidPercentage"), chosen),
        gpu=out.gpu,
    )


def spot_max_price(bid_percentage: int | None, types: list[InstanceType]) -> str | None:
    """Auto Scaling's SpotMaxPrice for ``bidPercentage``: one cap for the whole group, per
    unit (vCPU) hour, so it is the percentage of the lowest On-Demand price per vCPU among
    the types; no type is ever bought above its own percentage. None (Auto Scaling's
    default, the On-Demand price) for 100, 0 or no percentage."""
    if not bid_percentage or bid_percentage >= 100 or not types:  # noqa: PLR2004 - 100 percent: the On-Demand price (see the docstring)
        return None
    cap = bid_percentage / 100 * min(t.price_per_vcpu for t in types)
    return f"{max(cap, 0.00001):.5f}"


def settle(
    target: int,
    current: int,
    *,
    floor: int,
    ceiling: int,
    enabled: bool,
    low_since: int | None,
    now_ms: int,
    scale_in_after_ms: int,
) -> tuple[int, int | None]:
    """The desiredvCpus to apply now, and since when demand has been below it (None when
    it is not). Scale-out is immediate; scale-in waits until demand has stayed low for
    ``scale_in_after_ms``, so a short gap between jobs does not cycle instances. A
    disabled environment never scales out."""
    current = clamp(current, floor, ceiling)
    target = clamp(target, floor, ceiling)
    if not enabled:
        target = min(target, current)
    if target >= current:
        return target, None
    since = now_ms if low_since is None else low_since
    if now_ms - since >= scale_in_after_ms:
        return target, None
    return current, since


def _families(catalog: Catalog) -> str:
    return ", ".join(dict.fromkeys(t.family for t in catalog.types.values()))


__all__ = [
    "Catalog",
    "Environment",
    "InstanceType",
    "Plan",
    "QueueDemand",
    "Shape",
    "Waiting",
    "assign",
    "check_instance_types",
    "choose_types",
    "default_catalog",
    "occupied_vcpus",
    "plan",
    "settle",
    "spot_max_price",
]
