"""Triggers and schedules, batchplane's own named resources (layout: store/dynamodb.py).
Triggers are listed by bucket, then name: an S3 event reads only its bucket's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .resources import Named

if TYPE_CHECKING:
    from .dynamodb import Item


class TriggerStore(Named):
    prefix = "TRIGGER"
    listing = "TRIGGERS"

    def _sort_key(self, name: str, doc: dict[str, Any]) -> str:
        return f"{doc['bucket']}#{name}"

    def page(self, limit: int | None = None, token: str | None = None,
             bucket: str | None = None) -> tuple[list[Item], str | None]:
        """One page of the triggers (of ``bucket``, if given), by bucket and name."""
        return self.store.query_index(self.listing, limit=limit, token=token,
                                      begins_with=f"{bucket}#" if bucket else None)

    def replace(self, item: Item) -> None:
        """Compare-and-swap a trigger read with ``get``, listed under its bucket now;
        ConflictError if it changed since."""
        item.gsi1sk = self._sort_key(item.doc["triggerName"], item.doc)
        self.store.replace(item)


class ScheduleStore(Named):
    prefix = "SCHEDULE"
    listing = "SCHEDULES"
