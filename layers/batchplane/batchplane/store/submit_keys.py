"""Submit keys: SubmitJob's answer by the request key of the call that made the job
(``SUBMIT#<key>`` / ``#``), written in the job's own transaction and kept a day, so a
retried call answers with the job the first one created instead of making a second."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from .dynamodb import Item

if TYPE_CHECKING:
    from .port import Store

SUBMIT_KEY_TTL_S = 24 * 3600


def _pk(key: str) -> str:
    return f"SUBMIT#{key}"


class SubmitKeys:
    """SubmitJob's answers by request key."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> dict[str, Any] | None:
        """The answer the call with this key was given, or None."""
        item = self.store.get(_pk(key), "#")
        return item.doc if item is not None else None

    def put_op(self, key: str, answer: dict[str, Any]) -> Any:
        """A transaction entry recording ``answer`` under ``key`` (refused if one is)."""
        item = Item(pk=_pk(key), sk="#", doc=answer, extra={"expiresAt": now_ms() // 1000 + SUBMIT_KEY_TTL_S})
        return self.store.put_new_op(item)
