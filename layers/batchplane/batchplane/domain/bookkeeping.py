"""What batchplane keeps on a job beside its DescribeJobs document: where it waits and
runs, its current attempt, its array or multi-node parent, its fan-out. The API never
shows these.

They are stored as top-level attributes of the job's item (``Item.extra``), where the
stream's filters and the listings can read them without decoding the document, so
``Bookkeeping`` is a typed view over that dict rather than a copy: reading a field reads
the attribute, setting one writes it (None removes it), and saving the item saves them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

# Fan-out (an array parent's children made, cancelled or terminated in chunks by the
# workflow): the action while it runs, ``<action>:done`` once its last chunk is done.
MATERIALIZE, CANCEL, TERMINATE = "materialize", "cancel", "terminate"
FANOUT_ACTIONS = (MATERIALIZE, CANCEL, TERMINATE)
OFF = "off"  # events / childEvents: no "Batch Job State Change" events for the children


def fanout_done(action: str) -> str:
    return f"{action}:done"


def is_fanout_done(state: str | None) -> bool:
    return bool(state) and str(state).endswith(":done")


class _Attribute(Generic[T]):
    """One bookkeeping attribute: its stored name and what reads as its absence."""

    def __init__(self, key: str, default: T) -> None:
        self.key = key
        self.default = default

    @overload
    def __get__(self, obj: None, owner: type) -> _Attribute[T]: ...

    @overload
    def __get__(self, obj: Bookkeeping, owner: type) -> T: ...

    def __get__(self, obj: Bookkeeping | None, owner: type) -> T | _Attribute[T]:
        if obj is None:
            return self
        return obj.attrs.get(self.key, self.default)

    def __set__(self, obj: Bookkeeping, value: T) -> None:
        if value is None:
            obj.attrs.pop(self.key, None)
        else:
            obj.attrs[self.key] = value

    def __delete__(self, obj: Bookkeeping) -> None:
        """Back to its absence (and its default): for a field whose default is not None."""
        obj.attrs.pop(self.key, None)


class Bookkeeping:
    __slots__ = ("attrs",)

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs

    # -- every job ----------------------------------------------------------------------
    queue = _Attribute[str]("queue", "")  # its job queue's name
    status = _Attribute[str | None]("status", None)  # the status its listing keys were made for
    since = _Attribute[int | None]("since", None)  # when it entered that status (epoch ms)
    expires_at = _Attribute[int | None]("expiresAt", None)  # DynamoDB TTL (epoch s) once ended
    owner = _Attribute[str | None]("owner", None)  # the identity that submitted it (domain.tenancy)
    waiting = _Attribute[int]("waiting", 0)  # dependencies not released yet (service.dependencies)
    events = _Attribute[str | None]("events", None)  # OFF: the publisher's filter drops its records

    # -- its current attempt (service.scheduler, service.attempts) ----------------------
    run = _Attribute[int]("run", 0)  # dispatches so far: the attempt's run number (0: none yet)
    ce = _Attribute[str]("ce", "")  # the compute environment its attempt holds vCPUs of
    # Someone decided to stop the attempt: {"reason", "retryable", "requeue"}.
    stopping = _Attribute[dict[str, Any] | None]("stopping", None)
    launch_errors = _Attribute[int]("launchErrors", 0)  # failed launches of this dispatch
    launch_error_at = _Attribute[int | None]("launchErrorAt", None)
    # No room after all: not placed on ``hold_ce`` until ``hold_until`` or until its usage
    # falls below ``hold_releases``.
    hold_until = _Attribute[int | None]("holdUntil", None)
    hold_ce = _Attribute[str | None]("holdCe", None)
    hold_releases = _Attribute[int | None]("holdReleases", None)

    # -- an array parent and its children (service.arrays) ------------------------------
    fanout = _Attribute[str | None]("fanout", None)  # an action of FANOUT_ACTIONS, or fanout_done(it)
    child_events = _Attribute[str | None]("childEvents", None)  # OFF: its children carry events=OFF
    parent = _Attribute[str | None]("parent", None)  # a child's parent job id
    index = _Attribute[int]("index", 0)  # a child's array index (a child is a job with ``parent``)

    # -- a multi-node parallel job and its nodes (service.nodes) ------------------------
    nodes_attempt = _Attribute[int]("nodesAttempt", 0)  # the parent's attempt of its nodes (0: not made)
    decided = _Attribute[int]("decided", 0)  # the nodes attempt the parent has ended
    node_overrides = _Attribute[dict[str, Any] | None]("nodeOverrides", None)  # by node index
    mnp = _Attribute[str | None]("mnp", None)  # a node's parent job id
    node = _Attribute[int]("node", 0)  # a node's index (a node is a job with ``mnp``)
    attempt = _Attribute[int]("attempt", 0)  # the nodes attempt a node belongs to
    main_address = _Attribute[str | None]("mainAddress", None)  # the main node's address
    pinned_ce = _Attribute[str | None]("pinnedCe", None)  # nodes run where the main node runs
    retryable = _Attribute[bool]("retryable", True)  # a node's end: may the parent retry
