"""The repositories of the store port write the table's items where existing tables and
data directories have them (store/dynamodb.py's layout): each test writes through a
repository and reads the raw item back by its literal key, on both adapters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchplane.domain import arrays
from batchplane.store import (
    ArrayCounters,
    ComputeEnvironments,
    DependencyEdges,
    JobDefinitions,
    JobQueues,
    JobStore,
    ScheduleStore,
    SchedulingPolicies,
    Shares,
    SubmitKeys,
    TriggerStore,
    UsageCounters,
)
from batchplane.store.jobs import is_job, job_id
from batchplane.store.resources import is_compute_environment, is_placement_resource

if TYPE_CHECKING:
    from .conftest import Kit


def raw(kit: Kit, pk: str, sk: str) -> dict[str, Any]:
    (found,) = [i for i in kit.store.query_partition(pk, sk, raw=True) if i["sk"] == sk]
    return found


def listed(kit: Kit, gsi1pk: str) -> list[tuple[str, str, str | None]]:
    return [(i.pk, i.sk, i.gsi1sk) for i in kit.store.query_index(gsi1pk)[0]]


def test_a_job_is_one_item_listed_by_queue_and_status(kit: Kit) -> None:
    jobs = JobStore(kit.store)
    doc = {"jobId": "j1", "status": "RUNNABLE", "attempts": [], "createdAt": 1_700_000_000_000}
    kit.store.transact([jobs.new_op(JobStore.item(doc, queue="q"))])
    assert raw(kit, "JOB#j1", "JOB")["queue"] == "q"
    assert listed(kit, "JOBS#q#RUNNABLE") == [("JOB#j1", "JOB", "11700000000000#j1")]
    got = jobs.get("j1")
    assert got is not None and got.doc == doc
    assert [i.doc["jobId"] for i in jobs.queued("q", "RUNNABLE", 10)] == ["j1"]
    assert [key for key, _ in jobs.newest_first("q", "RUNNABLE", None, 10)] == ["1700000000000#j1"]


def test_array_counters_and_chunk_markers_sit_under_the_parent(kit: Kit) -> None:
    counters = ArrayCounters(kit.store)
    shards = arrays.COUNTER_SHARDS  # child 0 and child ``shards`` count on one item
    kit.store.transact(counters.chunk_ops("p", {0: "RUNNABLE", 1: "PENDING", shards: "RUNNABLE"}))
    assert raw(kit, "ARRAY#p", "COUNT#00")["RUNNABLE"] == 2
    assert raw(kit, "ARRAY#p", "COUNT#01")["PENDING"] == 1
    assert raw(kit, "ARRAY#p", "CHUNK#000000")
    assert counters.summary("p")["RUNNABLE"] == 2
    assert counters.forget("p") == 3
    assert kit.store.query_partition("ARRAY#p", "", raw=True) == []


def test_usage_counters_sit_beside_their_compute_environment(kit: Kit) -> None:
    usage = UsageCounters(kit.store)
    kit.store.transact([usage.add_op("ce", {"mvcpus": 1500, "releases": 1})])
    assert kit.store.counters("CE#ce", "USAGE") == {"mvcpus": 1500, "releases": 1}
    assert usage.of("ce") == {"mvcpus": 1500, "releases": 1}
    usage.forget("ce")
    assert kit.store.counters("CE#ce", "USAGE") == {}


def test_dependency_edges_sit_under_the_job_waited_for(kit: Kit) -> None:
    edges = DependencyEdges(kit.store)
    edges.add(DependencyEdges.new("a", "b", "SEQUENTIAL"))
    assert raw(kit, "DEPS#a", "JOB#b")["doc"] == {"type": "SEQUENTIAL"}
    ((dependent, edge),) = edges.of("a")
    assert dependent == "b"
    kit.store.transact([edges.release_op(edge, "release")])
    released = raw(kit, "DEPS#a", "JOB#b")
    assert released["released"] == "release" and released["expiresAt"] > 0


def test_submit_keys_hold_the_first_answer(kit: Kit) -> None:
    keys = SubmitKeys(kit.store)
    kit.store.transact([keys.put_op("k", {"jobId": "j1"})])
    assert raw(kit, "SUBMIT#k", "#")["doc"] == {"jobId": "j1"}
    assert keys.get("k") == {"jobId": "j1"}
    assert keys.get("other") is None


def test_shares_sit_under_their_queue(kit: Kit) -> None:
    shares = Shares(kit.store)
    shares.save(Shares.new("q", "blue", 250.0, 1000))
    assert raw(kit, "SHARES#q", "SHARE#blue")["doc"] == {"share": "blue", "usage": 250.0, "at": 1000}
    (item,) = shares.of("q")
    item.doc["usage"] = 100.0
    shares.save(item)
    got = shares.get("q", "blue")
    assert got is not None and got.doc["usage"] == 100.0 and got.version == 2


def test_named_resources_are_one_item_each_listed_by_kind(kit: Kit) -> None:
    for kind, prefix in ((ComputeEnvironments, "CE"), (JobQueues, "JQ"), (SchedulingPolicies, "SP")):
        kind(kit.store).create("a", {"name": "a"})
        assert raw(kit, f"{prefix}#a", "#")["doc"] == {"name": "a"}
        assert listed(kit, prefix) == [(f"{prefix}#a", "#", "a")]
    TriggerStore(kit.store).create("t", {"triggerName": "t", "bucket": "b"})
    assert listed(kit, "TRIGGERS") == [("TRIGGER#t", "#", "b#t")]
    ScheduleStore(kit.store).create("s", {"scheduleName": "s"})
    assert listed(kit, "SCHEDULES") == [("SCHEDULE#s", "#", "s")]


def test_job_definitions_are_one_item_per_revision_and_a_head(kit: Kit) -> None:
    definitions = JobDefinitions(kit.store)
    for revision in (1, 2):
        latest, head = definitions.latest("d")
        assert latest == revision - 1
        definitions.add("d", revision, {"revision": revision}, head)
    assert raw(kit, "JD#d", "#")["doc"] == {"latest": 2}
    assert raw(kit, "JD#d", "REV#00000002")["status"] == "ACTIVE"
    assert listed(kit, "JD") == [("JD#d", "REV#00000001", "d#00000001"), ("JD#d", "REV#00000002", "d#00000002")]
    assert [i.doc["revision"] for i in definitions.revisions("d", newest_first=True)] == [2, 1]


def test_stream_records_are_told_apart_by_their_keys() -> None:
    assert is_job({"pk": "JOB#j1", "sk": "JOB"}) and job_id({"pk": "JOB#j1", "sk": "JOB"}) == "j1"
    assert not is_job({"pk": "DEPS#a", "sk": "JOB#b"})
    assert is_compute_environment({"pk": "CE#a", "sk": "#"})
    assert not is_compute_environment({"pk": "CE#a", "sk": "USAGE"})
    assert [is_placement_resource({"pk": pk, "sk": "#"}) for pk in ("CE#a", "JQ#a", "SP#a", "JD#a", "SUBMIT#k")] \
        == [True, True, True, False, False]
