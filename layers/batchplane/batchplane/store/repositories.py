"""Every repository over one store, made once (by wiring) and shared by the use cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .arrays import ArrayCounters
from .dependencies import DependencyEdges
from .jobs import JobStore
from .resources import ComputeEnvironments, JobDefinitions, JobQueues, SchedulingPolicies
from .shares import Shares
from .submit_keys import SubmitKeys
from .triggers import ScheduleStore, TriggerStore
from .usage import UsageCounters

if TYPE_CHECKING:
    from .port import Store


@dataclass(frozen=True)
class Repositories:
    store: Store  # for what takes no key: transact the entries below hand out, replace an Item
    jobs: JobStore
    array_counters: ArrayCounters
    environments: ComputeEnvironments
    queues: JobQueues
    policies: SchedulingPolicies
    definitions: JobDefinitions
    usage: UsageCounters
    edges: DependencyEdges
    submit_keys: SubmitKeys
    shares: Shares
    triggers: TriggerStore
    schedules: ScheduleStore

    @classmethod
    def over(cls, store: Store) -> Repositories:
        return cls(
            store=store,
            jobs=JobStore(store),
            array_counters=ArrayCounters(store),
            environments=ComputeEnvironments(store),
            queues=JobQueues(store),
            policies=SchedulingPolicies(store),
            definitions=JobDefinitions(store),
            usage=UsageCounters(store),
            edges=DependencyEdges(store),
            submit_keys=SubmitKeys(store),
            shares=Shares(store),
            triggers=TriggerStore(store),
            schedules=ScheduleStore(store),
        )
