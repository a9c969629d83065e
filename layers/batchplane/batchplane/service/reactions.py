"""What follows a job's change of status, as the table's stream reports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..domain import jobs as rules
from ..store import jobs
from ..store.resources import is_placement_resource

if TYPE_CHECKING:
    from .arrays import Arrays
    from .dependencies import Dependencies
    from .nodes import Nodes

_HOLDING = (rules.STARTING, rules.RUNNING)  # statuses that hold compute capacity


def wakes_scheduler(new: dict[str, Any] | None, old: dict[str, Any] | None) -> bool:
    """Whether a job item's change can let the scheduler dispatch something: work arrived
    (the job became RUNNABLE) or capacity was freed (it left STARTING/RUNNING). A pass for
    any other change (STARTING -> RUNNING, a task ARN recorded) would find nothing new."""
    status = (new or {}).get("status")
    before = (old or {}).get("status")
    if status == before:
        return False
    return status == rules.RUNNABLE or (before in _HOLDING and status not in _HOLDING)


def resource_wakes_scheduler(keys: dict[str, Any]) -> bool:
    """Whether a change to an item other than a job can let the scheduler dispatch: an
    environment, queue or policy was created or changed (resized, enabled, reordered).
    Bookkeeping items (array counters, dependency edges, usage) change together with a
    job whose own record decides."""
    return is_placement_resource(keys)


class Reactions:
    def __init__(self, dependencies: Dependencies, arrays: Arrays, multinode: Nodes | None = None) -> None:
        self.dependencies = dependencies
        self.arrays = arrays
        self.multinode = multinode

    def job_changed(
        self, new: dict[str, Any], old: dict[str, Any] | None, parents: set[str]
    ) -> bool:
        """``new`` and ``old`` are the job item's images (keys, top-level status, parent).
        True when the reaction made a job RUNNABLE (a scheduling pass can place it now).
        Array parents whose child ended are added to ``parents``, for ``settle`` once per
        batch of records."""
        status = new.get("status")
        before = (old or {}).get("status")
        job_id = jobs.job_id(new)
        if status == rules.SUBMITTED and before is None:
            return self.dependencies.admit(job_id)
        if new.get("mnp") and status != before and self.multinode is not None:
            # A node of a multi-node parallel job: its main node ran or ended, or a node
            # of a retried attempt ended.
            return self.multinode.advance(str(new["mnp"]))
        if status in rules.TERMINAL and before != status:
            runnable = self.dependencies.on_finished(job_id, status)
            if new.get("parent"):
                parents.add(new["parent"])
            return runnable
        return False

    def job_removed(self, old: dict[str, Any]) -> None:
        """A job item expired (DynamoDB's TTL removed it). An array parent that fanned out
        leaves counter and chunk items, which go with it."""
        if old.get("fanout"):
            self.arrays.counters.forget(jobs.job_id(old))

    def settle(self, parents: set[str]) -> None:
        """Settle each array parent once (PENDING -> SUCCEEDED/FAILED when its last child
        ended). Reading the parent and its counters for every child record would make a
        large array's last records wait behind thousands of reads."""
        for parent in sorted(parents):
            self.arrays.settle(parent)
