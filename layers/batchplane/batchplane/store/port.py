"""The store port: what the repositories call, which both adapters (``DynamoStore``,
``SqliteStore``) implement and tests/contract holds them to. See store/__init__.py for
what each call means."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .dynamodb import Item

# A transaction entry: the adapter's own (a TransactWriteItems entry, a SQLite write);
# pass it back only to the store that made it.
Op = Any


class Store(Protocol):
    def get(self, pk: str, sk: str, consistent: bool = True) -> Item | None: ...

    def batch_get(self, keys: list[tuple[str, str]]) -> list[Item]: ...

    def put_new(self, item: Item) -> None: ...

    def replace(self, item: Item) -> None: ...

    def delete(self, pk: str, sk: str, expected_version: int | None = None) -> None: ...

    def put_new_op(self, item: Item) -> Op: ...

    def replace_op(self, item: Item) -> Op: ...

    def add_op(self, pk: str, sk: str, deltas: dict[str, int], limits: dict[str, int] | None = None) -> Op: ...

    def check_op(self, pk: str, sk: str, attribute: str, not_in: tuple[str, ...]) -> Op: ...

    def transact(self, ops: list[Op]) -> None: ...

    def transact_or_put(self, op: Op) -> None: ...

    def counters(self, pk: str, sk: str) -> dict[str, int]: ...

    def query_index(
        self,
        gsi1pk: str,
        *,
        limit: int | None = None,
        token: str | None = None,
        begins_with: str | None = None,
        between: tuple[str, str] | None = None,
        forward: bool = True,
    ) -> tuple[list[Item], str | None]: ...

    def query_partition(self, pk: str, sk_prefix: str, forward: bool = True, raw: bool = False) -> list[Any]: ...
