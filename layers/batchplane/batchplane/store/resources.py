"""Named resources and job definitions.

A compute environment, job queue or scheduling policy is one item under its name
(``CE#<name>``, ``JQ#<name>``, ``SP#<name>`` / ``#``), listed by name in its kind's gsi1
partition (``CE``, ``JQ``, ``SP``). A job definition is one item per revision
(``JD#<name>`` / ``REV#<revision:08>``, listed in ``JD`` by ``<name>#<revision:08>``) and
a head item (``JD#<name>`` / ``#``) that holds the latest revision number, so that two
registrations can never take the same one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .dynamodb import Item

if TYPE_CHECKING:
    from .port import Store

HEAD = "#"  # the sort key of a resource's own item


class Named:
    """The items of one kind of named resource: one per name, listed by name."""

    prefix: ClassVar[str]  # of the partition key
    listing: ClassVar[str]  # the gsi1 partition that lists them

    def __init__(self, store: Store) -> None:
        self.store = store

    def _pk(self, name: str) -> str:
        return f"{self.prefix}#{name}"

    def _sort_key(self, name: str, doc: dict[str, Any]) -> str:  # noqa: ARG002 - store.triggers uses doc
        """Where the item sorts in the listing: by name."""
        return name

    def get(self, name: str) -> Item | None:
        return self.store.get(self._pk(name), HEAD)

    def get_many(self, names: list[str]) -> list[Item]:
        """The ones of ``names`` that exist, in the order named, each once."""
        found = {i.pk: i for i in self.store.batch_get([(self._pk(n), HEAD) for n in names])}
        return [found[self._pk(n)] for n in dict.fromkeys(names) if self._pk(n) in found]

    def create(self, name: str, doc: dict[str, Any]) -> Item:
        """Store a new one; ConflictError if the name is taken."""
        item = Item(pk=self._pk(name), sk=HEAD, doc=doc, gsi1pk=self.listing, gsi1sk=self._sort_key(name, doc))
        self.store.put_new(item)
        return item

    def page(self, limit: int | None = None, token: str | None = None) -> tuple[list[Item], str | None]:
        """One page of the listing, by name, and the token of the next."""
        return self.store.query_index(self.listing, limit=limit, token=token)

    def all(self) -> list[Item]:
        """Every one, by name, read 100 at a time."""
        items: list[Item] = []
        token = None
        while True:
            page, token = self.page(limit=100, token=token)
            items += page
            if not token:
                return items

    def delete(self, name: str, expected_version: int | None = None) -> None:
        """Delete it (only at ``expected_version``, if given: else ConflictError)."""
        self.store.delete(self._pk(name), HEAD, expected_version)


class ComputeEnvironments(Named):
    prefix = listing = "CE"


class JobQueues(Named):
    prefix = listing = "JQ"


class SchedulingPolicies(Named):
    prefix = listing = "SP"


_PLACEMENT = tuple(f"{kind.prefix}#" for kind in (ComputeEnvironments, JobQueues, SchedulingPolicies))


def is_compute_environment(keys: dict[str, Any]) -> bool:
    """Whether a stream record's keys are a compute environment's item."""
    return keys.get("sk") == HEAD and str(keys.get("pk", "")).startswith(f"{ComputeEnvironments.prefix}#")


def is_placement_resource(keys: dict[str, Any]) -> bool:
    """Whether a stream record's keys are a compute environment's, job queue's or
    scheduling policy's item: what a scheduling pass places jobs by."""
    return keys.get("sk") == HEAD and str(keys.get("pk", "")).startswith(_PLACEMENT)


class JobDefinitions:
    """Job definitions by name and revision."""

    listing = "JD"

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _pk(name: str) -> str:
        return f"JD#{name}"

    def latest(self, name: str) -> tuple[int, Item | None]:
        """The latest revision number of ``name`` (0: none yet) and the head item that
        holds it, to pass to ``add``."""
        head = self.store.get(self._pk(name), HEAD)
        return (head.doc["latest"] if head else 0), head

    def add(self, name: str, revision: int, doc: dict[str, Any], head: Item | None) -> None:
        """Store ``doc`` as revision ``revision`` (ACTIVE) and move the head to it, both or
        neither: ConflictError when a concurrent registration took that revision."""
        rev_item = Item(
            pk=self._pk(name), sk=f"REV#{revision:08d}", doc=doc, gsi1pk=self.listing,
            gsi1sk=f"{name}#{revision:08d}", extra={"status": "ACTIVE"},
        )
        if head is None:
            head = Item(pk=self._pk(name), sk=HEAD, doc={"latest": revision})
            head_op = self.store.put_new_op(head)
        else:
            head.doc = {"latest": revision}
            head_op = self.store.replace_op(head)
        self.store.transact([head_op, self.store.put_new_op(rev_item)])

    def revision(self, name: str, revision: int) -> Item | None:
        return self.store.get(self._pk(name), f"REV#{revision:08d}")

    def revisions(self, name: str, *, newest_first: bool = False) -> list[Item]:
        """Every revision of ``name``, oldest first unless ``newest_first``."""
        return self.store.query_partition(self._pk(name), "REV#", forward=not newest_first)

    def page(self, limit: int | None = None, token: str | None = None) -> tuple[list[Item], str | None]:
        """One page of every revision of every definition, by name and revision."""
        return self.store.query_index(self.listing, limit=limit, token=token)
