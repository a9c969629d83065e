"""The virtual EC2 instances local attempts run on.

A MANAGED EC2 or SPOT compute environment gets instances of the types the provisioner
would choose (``capacity.choose_types`` with its allocationStrategy over its
instanceTypes), and each attempt is placed on one with room for its vCPUs, memory and
GPUs, as ECS places a task on a container instance. A new instance is added while the
environment's instances hold fewer than maxvCpus (so, as on AWS, it may overshoot
maxvCpus by less than one instance); idle instances make way for one of another type.
When nothing has room the attempt gets no instance, as RunTask answers when the cluster
is full. Other environments (Fargate, UNMANAGED) get one host each without a shape.

A node of a multi-node parallel job takes an instance of its own (``exclusive``), and
each instance has its own loopback address (127.0.0.x), its private IPv4 address: nodes
that rendezvous over IP really talk to each other.

Not thread-safe: the launcher holds its lock around every call.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..domain import capacity, compute


@dataclass
class VirtualInstance:
    instance_id: str
    type: capacity.InstanceType | None  # None: a host without a shape (Fargate, UNMANAGED)
    tasks: dict[str, capacity.Shape] = field(default_factory=dict)  # task ARN -> what it holds
    address: str = "127.0.0.1"
    exclusive: bool = False  # a node of a multi-node parallel job holds it alone

    def has_room(self, shape: capacity.Shape) -> bool:
        if self.exclusive:
            return False
        if self.type is None:
            return True
        used = list(self.tasks.values())
        return (sum(s.mvcpus for s in used) + shape.mvcpus <= self.type.vcpus * 1000
                and sum(s.memory_mib for s in used) + shape.memory_mib <= self.type.usable_memory_mib
                and sum(s.gpus for s in used) + shape.gpus <= self.type.gpus)


class VirtualFleet:
    def __init__(self, catalog: capacity.Catalog | None = None) -> None:
        self.catalog = catalog or capacity.default_catalog()
        self.instances: dict[str, list[VirtualInstance]] = {}  # environment name -> instances
        self._next_address = 2  # 127.0.0.2 on: 127.0.0.1 stays the machine's own

    def place(self, ce: dict[str, Any], task_arn: str, shape: capacity.Shape, *,
              exclusive: bool = False) -> VirtualInstance | None:
        """The instance the task runs on, or None when the environment has no room.
        ``exclusive``: an instance with no other task, which takes no other while it runs."""
        fleet = self.instances.setdefault(ce["computeEnvironmentName"], [])
        types = capacity.instance_types(ce, self.catalog)
        target: VirtualInstance | None
        if types is None:
            target = next((i for i in fleet if not i.exclusive and (not exclusive or not i.tasks)), None)
            if target is None:
                target = self._new(None)
                fleet.append(target)
        elif exclusive:
            target = next((i for i in fleet if not i.tasks and i.has_room(shape)), None) or \
                self._launch(ce, fleet, types, shape)
        else:
            target = next((i for i in fleet if i.has_room(shape)), None) or self._launch(ce, fleet, types, shape)
        if target is not None:
            target.tasks[task_arn] = shape
            target.exclusive = exclusive
        return target

    def adopt(self, ce: dict[str, Any], task_arn: str, shape: capacity.Shape, instance_id: str,
              type_name: str | None) -> VirtualInstance:
        """A task that ran on while the launcher was away, back on its instance (made again,
        of the type it had, if this fleet has not got it): it holds its share whether or
        not the instance has room, since it is running there already."""
        fleet = self.instances.setdefault(ce["computeEnvironmentName"], [])
        instance = next((i for i in fleet if i.instance_id == instance_id), None)
        if instance is None:
            instance = self._new(self.catalog.types.get(type_name) if type_name else None, instance_id)
            fleet.append(instance)
        instance.tasks[task_arn] = shape
        return instance

    def release(self, task_arn: str) -> None:
        for fleet in self.instances.values():
            for instance in fleet:
                if instance.tasks.pop(task_arn, None) is not None and not instance.tasks:
                    instance.exclusive = False

    def remove(self, instance_id: str) -> None:
        """The instance is gone (a Spot reclaim): later attempts land elsewhere."""
        for name, fleet in self.instances.items():
            self.instances[name] = [i for i in fleet if i.instance_id != instance_id]

    def _launch(self, ce: dict[str, Any], fleet: list[VirtualInstance],
                types: tuple[capacity.InstanceType, ...], shape: capacity.Shape) -> VirtualInstance | None:
        ranked = capacity.choose_types(list(types), [shape], ce["computeResources"].get("allocationStrategy")
                                       or "BEST_FIT")
        if not ranked:
            return None
        ceiling = compute.max_vcpus(ce) or 0
        fleet[:] = [i for i in fleet if i.tasks]  # idle instances scale in to make way
        if sum(i.type.vcpus for i in fleet if i.type) >= ceiling:
            return None
        instance = self._new(ranked[0])
        fleet.append(instance)
        return instance

    def _new(self, type_: capacity.InstanceType | None, instance_id: str | None = None) -> VirtualInstance:
        """An instance with the next loopback address (127.0.0.2 to 127.255.255.254)."""
        n = self._next_address
        self._next_address = n + 1 if n % 256 != 254 else n + 3  # noqa: PLR2004 - no .255 or .0 hosts
        return VirtualInstance(instance_id or _instance_id(), type_,
                               address=f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}")


def _instance_id() -> str:
    return "i-" + uuid.uuid4().hex[:17]


class DevicePool:
    """This machine's GPUs, each given to one attempt at a time: what its virtual instance
    assigned it, as ECS gives a task its instance's GPUs. ``devices``: their ids (CUDA's
    indexes), from ``nvidia-smi -L`` or a count configured for testing.

    Not thread-safe: the launcher holds its lock around every call."""

    def __init__(self, devices: list[str]) -> None:
        self.devices = list(devices)
        self.held: dict[str, list[str]] = {}  # task ARN -> its devices

    @classmethod
    def of_machine(cls, count: int | None = None) -> DevicePool:
        """``count`` devices 0..count-1 (none: what nvidia-smi lists, if it runs here)."""
        if count is not None:
            return cls([str(i) for i in range(count)])
        try:
            listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return cls([])
        return cls(re.findall(r"^GPU (\d+):", listed, flags=re.MULTILINE))

    def free(self) -> list[str]:
        taken = {d for held in self.held.values() for d in held}
        return [d for d in self.devices if d not in taken]

    def take(self, task_arn: str, count: int) -> list[str] | None:
        """``count`` free devices for the task, or None if fewer are free."""
        free = self.free()
        if len(free) < count:
            return None
        self.held[task_arn] = free[:count]
        return self.held[task_arn]

    def adopt(self, task_arn: str, devices: list[str]) -> None:
        """A task that ran on while the launcher was away keeps its devices."""
        self.held[task_arn] = [d for d in devices if d in self.devices]

    def release(self, task_arn: str) -> None:
        self.held.pop(task_arn, None)
