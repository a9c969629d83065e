"""What follows a job's change of status, as the table's stream reports it."""

from __future__ import annotations

from typing import Any

from ..domain import jobs as rules
from .arrays import Arrays
from .dependencies import Dependencies


class Reactions:
    def __init__(self, dependencies: Dependencies, arrays: Arrays) -> None:
        self.dependencies = dependencies
        self.arrays = arrays

    def job_changed(self, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        """``new`` and ``old`` are the job item's images (top-level status, parent, doc)."""
        status = new.get("status")
        before = (old or {}).get("status")
        job_id = new["doc"]["jobId"]
        if status == rules.SUBMITTED and before is None:
            self.dependencies.admit(job_id)
        elif status in rules.TERMINAL and before != status:
            self.dependencies.on_finished(job_id, status)
            if new.get("parent"):
                self.arrays.settle(new["parent"])
