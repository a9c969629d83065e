"""Fair-share usage: recorded when an attempt ends, read when the scheduler plans a
fair-share queue (the rules are domain/fairshare.py, the items store/shares.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from ..domain import fairshare
from ..errors import ConflictError
from ..store.jobs import mvcpus
from ..store.shares import Shares

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..store.repositories import Repositories
    from .resources import Resources


class ShareUsage:
    def __init__(self, repos: Repositories, resources: Resources) -> None:
        self.shares = repos.shares
        self.resources = resources

    def _policy(self, queue: dict[str, Any]) -> dict[str, Any]:
        return self.resources.scheduling_policy(queue["schedulingPolicyArn"]).doc["fairsharePolicy"]

    def of_queue(self, queue: dict[str, Any], running: Iterable[tuple[str | None, int]]) -> fairshare.FairShare:
        """The fair share of a queue that has a scheduling policy, with the (share, mvCPUs)
        of its jobs running now. ClientException when its policy is gone."""
        policy = self._policy(queue)
        return fairshare.of_policy(policy, running, self.history(queue["jobQueueName"], policy["shareDecaySeconds"]))

    def history(self, queue: str, decay_seconds: int) -> dict[str, float]:
        """Each share's finished work, decayed to now, as average milli-vCPUs."""
        if decay_seconds <= 0:
            return {}
        now = now_ms()
        return {
            i.doc["share"]: fairshare.decayed(i.doc["usage"], i.doc["at"], now, decay_seconds)
            for i in self.shares.of(queue)
        }

    def record(self, queue_name: str, doc: dict[str, Any]) -> None:
        """Add an ended attempt's vCPU-time to its share's decayed usage (fair share with
        shareDecaySeconds > 0)."""
        queue = self.resources.job_queue(queue_name).doc
        if not queue.get("schedulingPolicyArn"):
            return
        decay = self._policy(queue)["shareDecaySeconds"]
        if decay <= 0:
            return
        now = now_ms()
        added = fairshare.attempt_usage(mvcpus(doc), doc["startedAt"], now, decay)
        share = doc["shareIdentifier"]
        while True:
            item = self.shares.get(queue_name, share)
            if item is None:
                item = Shares.new(queue_name, share, added, now)
            else:
                item.doc["usage"] = fairshare.decayed(item.doc["usage"], item.doc["at"], now, decay) + added
                item.doc["at"] = now
            try:
                self.shares.save(item)
                return
            except ConflictError:
                continue
