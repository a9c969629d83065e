"""The store port's contract (store/__init__.py), held against both adapters: each test
runs on DynamoDB (moto) and on the embedded SQLite store through the ``kit`` fixture, so
the two cannot drift apart. What only the embedded store has (TTL sweeps on moto's
table never run, checkpoints and durability are local mode's machinery) is at the end,
on SQLite alone."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from batchplane.errors import ClientException, ConflictError
from batchplane.store import Item
from batchplane.store.dynamodb import deserialize
from batchplane.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Kit


def item(pk: str, sk: str = "#", doc: dict[str, Any] | None = None, gsi1: tuple[str, str] | None = None,
         **extra: Any) -> Item:
    return Item(pk=pk, sk=sk, doc={"name": pk} if doc is None else doc,
                gsi1pk=gsi1[0] if gsi1 else None, gsi1sk=gsi1[1] if gsi1 else None, extra=extra)


def stored(kit: Kit, pk: str, sk: str = "#") -> Item:
    got = kit.store.get(pk, sk)
    assert got is not None, (pk, sk)
    return got


def same(a: Item, b: Item) -> None:
    assert (a.pk, a.sk, a.doc, a.version, a.gsi1pk, a.gsi1sk, a.extra or {}) == \
           (b.pk, b.sk, b.doc, b.version, b.gsi1pk, b.gsi1sk, b.extra or {})


def image(it: Item) -> dict[str, Any]:
    """An item as a stream image decodes to it."""
    out = {"pk": it.pk, "sk": it.sk, "version": it.version, "doc": it.doc, **(it.extra or {})}
    out.update({k: v for k, v in (("gsi1pk", it.gsi1pk), ("gsi1sk", it.gsi1sk)) if v is not None})
    return out


def listing(kit: Kit, gsi1pk: str, **kwargs: Any) -> list[str]:
    items, token = kit.store.query_index(gsi1pk, **kwargs)
    assert token is None
    return [i.pk for i in items]


def pages(kit: Kit, gsi1pk: str, limit: int, **kwargs: Any) -> list[list[str]]:
    """Every page of a listing, following nextToken until there is none."""
    out: list[list[str]] = []
    token = None
    while True:
        items, token = kit.store.query_index(gsi1pk, limit=limit, token=token, **kwargs)
        assert len(items) <= limit
        out.append([i.pk for i in items])
        if token is None:
            return out
        assert len(out) < 100, "the tokens never end"


def token_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


# -- single items ------------------------------------------------------------------------


def test_put_new_then_get(kit: Kit) -> None:
    new = item("CE#a", doc={"computeEnvironmentName": "a", "state": "ENABLED"}, gsi1=("CE", "a"),
               status="VALID", count=3)
    kit.store.put_new(new)
    assert new.version == 1
    got = stored(kit, "CE#a")
    assert got == Item("CE#a", "#", {"computeEnvironmentName": "a", "state": "ENABLED"}, 1, "CE", "a",
                       {"status": "VALID", "count": 3})
    assert kit.store.get("CE#a", "USAGE") is None
    assert kit.store.get("CE#b", "#") is None


def test_put_new_of_an_existing_key_conflicts_and_changes_nothing(kit: Kit) -> None:
    kit.store.put_new(item("JQ#q", doc={"v": "first"}, gsi1=("JQ", "q"), status="VALID"))
    with pytest.raises(ConflictError):
        kit.store.put_new(item("JQ#q", doc={"v": "second"}, gsi1=("JQ", "other"), status="INVALID"))
    same(stored(kit, "JQ#q"), Item("JQ#q", "#", {"v": "first"}, 1, "JQ", "q", {"status": "VALID"}))
    assert listing(kit, "JQ") == ["JQ#q"]


def test_replace_with_the_right_version_bumps_it(kit: Kit) -> None:
    kit.store.put_new(item("JQ#q", doc={"priority": 1}))
    current = stored(kit, "JQ#q")
    current.doc["priority"] = 2
    current.extra = {"status": "UPDATING"}
    kit.store.replace(current)
    assert current.version == 2
    same(stored(kit, "JQ#q"), Item("JQ#q", "#", {"priority": 2}, 2, None, None, {"status": "UPDATING"}))
    kit.store.replace(current)
    assert stored(kit, "JQ#q").version == 3


def test_replace_writes_the_whole_item(kit: Kit) -> None:
    kit.store.put_new(item("JOB#1", sk="JOB", gsi1=("JOBS#q#RUNNABLE", "1"), status="RUNNABLE", ce="a", run=1))
    moved = stored(kit, "JOB#1", "JOB")
    moved.extra = {"status": "SUCCEEDED"}  # attributes left out are gone, as with PutItem
    moved.gsi1pk = moved.gsi1sk = None  # out of every listing
    kit.store.replace(moved)
    same(stored(kit, "JOB#1", "JOB"), Item("JOB#1", "JOB", {"name": "JOB#1"}, 2, None, None, {"status": "SUCCEEDED"}))
    assert listing(kit, "JOBS#q#RUNNABLE") == []
    moved.gsi1pk, moved.gsi1sk = "JOBS#q#SUCCEEDED", "1"
    kit.store.replace(moved)
    assert listing(kit, "JOBS#q#SUCCEEDED") == ["JOB#1"]


def test_replace_with_a_stale_version_conflicts_and_keeps_both_sides(kit: Kit) -> None:
    kit.store.put_new(item("JQ#q", doc={"priority": 1}))
    mine, theirs = stored(kit, "JQ#q"), stored(kit, "JQ#q")
    theirs.doc["priority"] = 5
    kit.store.replace(theirs)
    mine.doc["priority"] = 9
    with pytest.raises(ConflictError):
        kit.store.replace(mine)
    assert mine.version == 1  # the caller's item as it was, ready to be read again
    same(stored(kit, "JQ#q"), Item("JQ#q", "#", {"priority": 5}, 2, None, None, {}))


def test_replace_of_a_missing_item_conflicts(kit: Kit) -> None:
    ghost = item("JQ#ghost")
    ghost.version = 1
    with pytest.raises(ConflictError):
        kit.store.replace(ghost)
    assert ghost.version == 1
    assert kit.store.get("JQ#ghost", "#") is None


def test_delete_with_and_without_an_expected_version(kit: Kit) -> None:
    for pk in ("A", "B"):
        kit.store.put_new(item(pk))
    kit.store.delete("A", "#")
    assert kit.store.get("A", "#") is None
    with pytest.raises(ConflictError):
        kit.store.delete("B", "#", expected_version=2)
    assert stored(kit, "B").version == 1
    kit.store.delete("B", "#", expected_version=1)
    assert kit.store.get("B", "#") is None


def test_delete_of_a_missing_item_is_a_no_op_unless_a_version_is_expected(kit: Kit) -> None:
    kit.store.delete("nothing", "#")
    with pytest.raises(ConflictError):  # "version = :v" fails on a missing item
        kit.store.delete("nothing", "#", expected_version=1)
    assert kit.records() == []


def test_batch_get_skips_missing_keys_and_returns_duplicates_once(kit: Kit) -> None:
    for pk in ("A", "B", "C"):
        kit.store.put_new(item(pk, doc={"id": pk}))
    got = kit.store.batch_get([("A", "#"), ("missing", "#"), ("C", "#"), ("A", "#"), ("B", "USAGE")])
    assert sorted((i.pk, i.doc["id"], i.version) for i in got) == [("A", "A", 1), ("C", "C", 1)]
    assert kit.store.batch_get([]) == []


def test_batch_get_of_more_than_a_hundred_keys(kit: Kit) -> None:
    kit.store.transact([kit.store.put_new_op(item(f"J#{n:03}")) for n in range(60)])
    kit.store.transact([kit.store.put_new_op(item(f"J#{n:03}")) for n in range(60, 120)])
    keys = [(f"J#{n:03}", "#") for n in range(130)]
    assert sorted(i.pk for i in kit.store.batch_get(keys)) == [f"J#{n:03}" for n in range(120)]


# -- transactions ------------------------------------------------------------------------


def _seed_for_transactions(kit: Kit) -> None:
    kit.store.put_new(item("JOB#1", sk="JOB", doc={"status": "RUNNABLE"}, status="RUNNABLE"))
    kit.store.put_new(item("JQ#q", status="VALID"))
    kit.store.put_new(item("JD#d"))
    kit.store.transact([kit.store.add_op("CE#a", "USAGE", {"mvcpus": 3000}, {"mvcpus": 4000})])


def _unchanged_after_transactions(kit: Kit, before: list[dict[str, Any]]) -> None:
    job = stored(kit, "JOB#1", "JOB")
    same(job, Item("JOB#1", "JOB", {"status": "RUNNABLE"}, 1, None, None, {"status": "RUNNABLE"}))
    assert kit.store.counters("CE#a", "USAGE") == {"mvcpus": 3000}
    assert kit.store.get("JOB#2", "JOB") is None
    assert stored(kit, "JQ#q").version == stored(kit, "JD#d").version == 1
    assert kit.records() == before


@pytest.mark.parametrize("failing", ["stale replace", "existing put_new", "over the limit", "in the set"])
def test_transact_is_all_or_nothing(kit: Kit, failing: str) -> None:
    _seed_for_transactions(kit)
    before = kit.records()
    s = kit.store
    job = stored(kit, "JOB#1", "JOB")
    job.doc["status"] = job.extra["status"] = "STARTING"  # type: ignore[index]
    stale = stored(kit, "JOB#1", "JOB")
    stale.version = 7
    ok = {
        "replace": s.replace_op(job),
        "put_new": s.put_new_op(item("JOB#2", sk="JOB", status="SUBMITTED")),
        "add": s.add_op("CE#a", "USAGE", {"mvcpus": 1000}, {"mvcpus": 4000}),
        "check": s.check_op("JQ#q", "#", "status", ("DELETED", "DELETING")),
    }
    bad = {
        "stale replace": ("replace", s.replace_op(stale)),
        "existing put_new": ("put_new", s.put_new_op(item("JD#d"))),
        "over the limit": ("add", s.add_op("CE#a", "USAGE", {"mvcpus": 1001}, {"mvcpus": 4000})),
        "in the set": ("check", s.check_op("JQ#q", "#", "status", ("DELETING", "VALID"))),
    }
    slot, op = bad[failing]
    ok[slot] = op  # the one failing condition, among ops that would pass
    with pytest.raises(ConflictError):
        s.transact(list(ok.values()))
    _unchanged_after_transactions(kit, before)


def test_transact_applies_every_op(kit: Kit) -> None:
    _seed_for_transactions(kit)
    s = kit.store
    job = stored(kit, "JOB#1", "JOB")
    job.extra = {"status": "STARTING"}
    s.transact([s.replace_op(job), s.put_new_op(item("JOB#2", sk="JOB")),
                s.add_op("CE#a", "USAGE", {"mvcpus": 1000}, {"mvcpus": 4000}),
                s.check_op("JQ#q", "#", "status", ("DELETED",))])
    assert stored(kit, "JOB#1", "JOB").extra == {"status": "STARTING"}
    assert stored(kit, "JOB#2", "JOB").version == 1
    assert s.counters("CE#a", "USAGE") == {"mvcpus": 4000}


def _refused(write: Any) -> None:
    """A transaction DynamoDB refuses as invalid (ValidationException; ValueError on the
    embedded store): a caller's mistake, never taken for a lost condition."""
    with pytest.raises(Exception) as refusal:  # noqa: B017 - the adapters' own error types
        write()
    assert not isinstance(refusal.value, ConflictError)


def test_transact_refuses_what_dynamodb_refuses(kit: Kit) -> None:
    s = kit.store
    s.put_new(item("JOB#1", sk="JOB"))
    job = stored(kit, "JOB#1", "JOB")
    _refused(lambda: s.transact([s.replace_op(job), s.check_op("JOB#1", "JOB", "status", ("X",))]))
    _refused(lambda: s.transact([s.put_new_op(item(f"J#{n}")) for n in range(101)]))  # at most 100 entries
    assert s.get("J#0", "#") is None and stored(kit, "JOB#1", "JOB").version == 1
    s.transact([s.put_new_op(item(f"J#{n}")) for n in range(100)])
    assert len(s.batch_get([(f"J#{n}", "#") for n in range(100)])) == 100
    before = kit.records()
    s.transact([])  # nothing to do: nothing done
    assert kit.records() == before


def test_add_op_creates_adds_and_respects_limits(kit: Kit) -> None:
    s = kit.store
    assert s.counters("CE#a", "USAGE") == {}
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": 2000, "jobs": 1})])
    assert s.counters("CE#a", "USAGE") == {"mvcpus": 2000, "jobs": 1}
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": 2000, "jobs": 1}, {"mvcpus": 4000})])  # exactly the limit
    assert s.counters("CE#a", "USAGE") == {"mvcpus": 4000, "jobs": 2}
    with pytest.raises(ConflictError):
        s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": 1, "jobs": 1}, {"mvcpus": 4000})])
    assert s.counters("CE#a", "USAGE") == {"mvcpus": 4000, "jobs": 2}
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": -4000, "jobs": -2}, {"mvcpus": 4000})])
    assert s.counters("CE#a", "USAGE") == {"mvcpus": 0, "jobs": 0}
    # A counter not there yet passes its limit whatever the delta (attribute_not_exists):
    s.transact([s.add_op("CE#a", "USAGE", {"gpus": 9}, {"gpus": 4})])
    s.transact([s.add_op("CE#b", "USAGE", {"mvcpus": 9000}, {"mvcpus": 4000})])
    assert s.counters("CE#a", "USAGE") == {"mvcpus": 0, "jobs": 0, "gpus": 9}
    assert s.counters("CE#b", "USAGE") == {"mvcpus": 9000}
    usage = stored(kit, "CE#b", "USAGE")  # a counter item, read as an item: no document
    assert (usage.doc, usage.version, usage.gsi1pk, usage.extra) == ({}, 0, None, {"mvcpus": 9000})


def test_check_op_passes_unless_the_attribute_is_in_the_set(kit: Kit) -> None:
    s = kit.store
    s.put_new(item("JQ#q", status="VALID"))
    s.put_new(item("JQ#bare"))
    marker = iter(range(100))

    def passes(*check: Any) -> bool:
        try:
            s.transact([s.check_op(*check), s.put_new_op(item(f"M#{next(marker)}"))])
        except ConflictError:
            return False
        return True

    assert passes("JQ#missing", "#", "status", ("DELETED",))  # no item
    assert passes("JQ#bare", "#", "status", ("DELETED",))  # no such attribute
    assert passes("JQ#q", "#", "status", ("DELETED", "DELETING"))  # not in the set
    assert not passes("JQ#q", "#", "status", ("DELETING", "VALID"))
    assert not passes("JQ#q", "#", "status", ("VALID",))
    assert [s.get(f"M#{n}", "#") is not None for n in range(5)] == [True, True, True, False, False]


def test_transact_or_put(kit: Kit) -> None:
    s = kit.store
    new = item("JD#a", sk="REV#00000001", gsi1=("JD", "a#00000001"))
    s.transact_or_put(s.put_new_op(new))
    assert stored(kit, "JD#a", "REV#00000001").version == 1
    with pytest.raises(ConflictError):
        s.transact_or_put(s.put_new_op(item("JD#a", sk="REV#00000001", doc={"other": True})))
    current = stored(kit, "JD#a", "REV#00000001")
    current.doc = {"status": "INACTIVE"}
    s.transact_or_put(s.replace_op(current))
    stale = stored(kit, "JD#a", "REV#00000001")
    stale.version = 1
    with pytest.raises(ConflictError):
        s.transact_or_put(s.replace_op(stale))
    same(stored(kit, "JD#a", "REV#00000001"),
         Item("JD#a", "REV#00000001", {"status": "INACTIVE"}, 2, "JD", "a#00000001", {}))


# -- listings ----------------------------------------------------------------------------

# Keys DynamoDB orders by their UTF-8 bytes, which is code point order (Python's too):
# an astral character sorts after U+FFxx here, where UTF-16 order would put it before.
_NAMES = ["A", "B-1", "B-2", "Ba", "a", "b", "z", "é", "日本", "\uff5e", "\U0001f600"]


def _seed_listing(kit: Kit) -> None:
    ops = [kit.store.put_new_op(item(f"CE#{name}", gsi1=("CE", name))) for name in reversed(_NAMES)]
    ops.append(kit.store.put_new_op(item("CE#unlisted")))  # no gsi1 keys: not in the index
    kit.store.transact(ops)
    half = Item("CE#half", "#", {}, gsi1pk="CE")  # gsi1pk without gsi1sk: not in the index
    kit.store.put_new(half)
    kit.store.put_new(item("JQ#a", gsi1=("JQ", "a")))


def test_query_index_order_and_direction(kit: Kit) -> None:
    _seed_listing(kit)
    assert listing(kit, "CE") == [f"CE#{n}" for n in sorted(_NAMES)]
    assert sorted(_NAMES) == _NAMES
    assert listing(kit, "CE", forward=False) == [f"CE#{n}" for n in reversed(_NAMES)]
    assert listing(kit, "JQ") == ["JQ#a"]
    assert listing(kit, "nothing") == []
    items, _ = kit.store.query_index("CE")
    same(items[0], Item("CE#A", "#", {"name": "CE#A"}, 1, "CE", "A", {}))


def test_query_index_begins_with_and_between(kit: Kit) -> None:
    _seed_listing(kit)
    assert listing(kit, "CE", begins_with="B") == ["CE#B-1", "CE#B-2", "CE#Ba"]
    assert listing(kit, "CE", begins_with="B-", forward=False) == ["CE#B-2", "CE#B-1"]
    assert listing(kit, "CE", begins_with="日") == ["CE#日本"]
    assert listing(kit, "CE", begins_with="q") == []
    assert listing(kit, "CE", between=("B-2", "b")) == ["CE#B-2", "CE#Ba", "CE#a", "CE#b"]  # both ends in
    assert listing(kit, "CE", between=("B-2", "b"), forward=False) == ["CE#b", "CE#a", "CE#Ba", "CE#B-2"]
    assert listing(kit, "CE", between=("c", "y")) == []


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("limit", [1, 3, 4, len(_NAMES), 50])
def test_query_index_pages_return_every_item_once_in_order(kit: Kit, limit: int, forward: bool) -> None:
    _seed_listing(kit)
    got = pages(kit, "CE", limit, forward=forward)
    expected = [f"CE#{n}" for n in (_NAMES if forward else reversed(_NAMES))]
    # DynamoDB may give a token with the last full page, and then an empty page; the
    # embedded store gives one only when more items follow. Following tokens until there
    # is none gives every item once, in order, on both.
    assert [pk for page in got for pk in page] == expected
    assert all(len(page) == limit for page in got[:-1])
    assert len(got) in (-(-len(expected) // limit), -(-len(expected) // limit) + 1)


def test_query_index_pages_with_a_condition(kit: Kit) -> None:
    _seed_listing(kit)
    assert [pk for page in pages(kit, "CE", 2, begins_with="B") for pk in page] == ["CE#B-1", "CE#B-2", "CE#Ba"]
    assert [pk for page in pages(kit, "CE", 2, between=("B-2", "b"), forward=False) for pk in page] == \
           ["CE#b", "CE#a", "CE#Ba", "CE#B-2"]


def test_query_index_pages_of_equal_sort_keys(kit: Kit) -> None:
    kit.store.transact([kit.store.put_new_op(item(f"JOB#{n}", sk="JOB", gsi1=("JOBS#q#RUNNABLE", "same")))
                        for n in range(7)])
    got = [pk for page in pages(kit, "JOBS#q#RUNNABLE", 2) for pk in page]
    assert sorted(got) == [f"JOB#{n}" for n in range(7)]


def test_query_index_pages_while_items_are_added(kit: Kit) -> None:
    s = kit.store
    s.transact([s.put_new_op(item(f"JOB#{n:02}", sk="JOB", gsi1=("JOBS", f"{n:02}"))) for n in range(2, 20, 2)])
    seen: list[str] = []
    items, token = s.query_index("JOBS", limit=3)
    seen += [i.gsi1sk for i in items]  # type: ignore[misc]
    s.put_new(item("JOB#00", sk="JOB", gsi1=("JOBS", "00")))  # before the place reached: not listed
    s.put_new(item("JOB#07", sk="JOB", gsi1=("JOBS", "07")))  # ahead: listed
    items, token = s.query_index("JOBS", limit=3, token=token)
    seen += [i.gsi1sk for i in items]  # type: ignore[misc]
    s.put_new(item("JOB#99", sk="JOB", gsi1=("JOBS", "99")))
    s.delete("JOB#16", "JOB")  # ahead, gone: not listed
    while token:
        items, token = s.query_index("JOBS", limit=3, token=token)
        seen += [i.gsi1sk for i in items]  # type: ignore[misc]
    assert seen == ["02", "04", "06", "07", "08", "10", "12", "14", "18", "99"]


_CRAFTED_TOKENS = {
    "random text": "this is not a token",
    "bad base64": "!!!???",
    "non-ascii": "ünïcödé",
    "deep JSON": base64.urlsafe_b64encode(b"[" * 5000).decode(),
    "deep JSON object": base64.urlsafe_b64encode(b'{"a":' * 5000).decode(),
    "truncated JSON": token_of(["a", "b"])[:-4],
    "a JSON object of the wrong shape": token_of({"offset": 10, "page": [1, 2]}),
    "a JSON number": token_of(12),
    "a list of the wrong length": token_of(["a", "b"]),
    "a list of numbers": token_of([1, 2, 3]),
    "key attributes not strings": token_of({"pk": {"N": "1"}, "sk": {"S": "#"}}),
    "unknown attribute": token_of({"pk": {"S": "CE#a"}, "sk": {"S": "#"}, "gsi1pk": {"S": "CE"},
                                   "gsi1sk": {"S": "a"}, "doc": {"S": "x"}}),
    "not bytes of UTF-8": base64.urlsafe_b64encode(b"\xff\xfe[").decode(),
    # Start keys of either adapter's shape, each wrong:
    "a start key without all its attributes": token_of({"pk": {"S": "CE#a"}}),
    "a start key of empty strings": token_of({"pk": {"S": ""}, "sk": {"S": ""}, "gsi1pk": {"S": ""},
                                              "gsi1sk": {"S": ""}}),
    "a start key with a lone surrogate": token_of({"pk": {"S": "CE#\ud800"}, "sk": {"S": "#"},
                                                   "gsi1pk": {"S": "CE"}, "gsi1sk": {"S": "\ud800"}}),
    "a list with a lone surrogate": token_of(["CE", "\ud800", "CE#\ud800", "#"]),
    "a list without its partition": token_of(["a", "CE#a", "#"]),
    "a start key of another partition": token_of({"pk": {"S": "JQ#a"}, "sk": {"S": "#"}, "gsi1pk": {"S": "JQ"},
                                                  "gsi1sk": {"S": "a"}}),
    "a list of another partition": token_of(["JQ", "a", "JQ#a", "#"]),
}


@pytest.mark.parametrize("token", list(_CRAFTED_TOKENS.values()), ids=list(_CRAFTED_TOKENS))
def test_a_crafted_token_is_a_client_exception(kit: Kit, token: str) -> None:
    _seed_listing(kit)
    with pytest.raises(ClientException):
        kit.store.query_index("CE", limit=2, token=token)


def test_a_token_of_another_listing_is_a_client_exception(kit: Kit) -> None:
    """A nextToken names a place in one listing; handed to another (another partition, or
    a key condition the place is outside of) it is refused, as DynamoDB refuses such a
    start key, instead of listing from somewhere else."""
    _seed_listing(kit)
    s = kit.store
    s.put_new(item("JQ#b", gsi1=("JQ", "b")))
    _, of_jq = s.query_index("JQ", limit=1)
    _, of_b = s.query_index("CE", limit=1, begins_with="B")
    _, of_range = s.query_index("CE", limit=1, between=("B-2", "b"))
    assert of_jq and of_b and of_range
    for token, kwargs in ((of_jq, {}), (of_b, {"begins_with": "a"}), (of_range, {"between": ("a", "z")}),
                          (of_range, {"begins_with": "B-1"})):
        with pytest.raises(ClientException):
            s.query_index("CE", limit=2, token=token, **kwargs)
    # Where the place is inside the listing, the token goes on from it, either way.
    assert [i.pk for i in s.query_index("CE", token=of_b)[0]][:2] == ["CE#B-2", "CE#Ba"]
    assert [i.pk for i in s.query_index("CE", token=of_b, begins_with="B-")[0]] == ["CE#B-2"]
    back, _ = s.query_index("CE", token=of_range, forward=False, between=("A", "B-2"))
    assert [i.pk for i in back] == ["CE#B-1", "CE#A"]


# -- item collections --------------------------------------------------------------------


def _seed_partition(kit: Kit) -> None:
    s = kit.store
    s.transact([s.put_new_op(item("JD#a", sk=sk, doc={"sk": sk})) for sk in ("REV#00000002", "#", "REV#00000001")]
               + [s.put_new_op(item("JD#ab", sk="REV#00000001")), s.put_new_op(item("JD#a", sk="REVISION"))]
               + [s.add_op("JD#a", "USAGE", {"n": 2})])


def test_query_partition_with_and_without_a_prefix(kit: Kit) -> None:
    _seed_partition(kit)
    s = kit.store
    assert [i.sk for i in s.query_partition("JD#a", "")] == ["#", "REV#00000001", "REV#00000002", "REVISION", "USAGE"]
    assert [i.sk for i in s.query_partition("JD#a", "", forward=False)] == \
           ["USAGE", "REVISION", "REV#00000002", "REV#00000001", "#"]
    assert [i.sk for i in s.query_partition("JD#a", "REV#")] == ["REV#00000001", "REV#00000002"]
    assert [i.sk for i in s.query_partition("JD#a", "REV#", forward=False)] == ["REV#00000002", "REV#00000001"]
    assert [i.doc for i in s.query_partition("JD#a", "REV#")] == [{"sk": "REV#00000001"}, {"sk": "REV#00000002"}]
    assert s.query_partition("JD#a", "X") == []
    assert s.query_partition("JD#zz", "") == []


def test_query_partition_raw_returns_plain_attributes(kit: Kit) -> None:
    _seed_partition(kit)
    kit.store.put_new(item("CE#a", sk="#", doc={"k": [1, 2.5]}, gsi1=("CE", "a"), status="VALID"))
    kit.store.transact([kit.store.add_op("CE#a", "USAGE", {"mvcpus": 500})])
    assert kit.store.query_partition("CE#a", "", raw=True) == [
        {"pk": "CE#a", "sk": "#", "version": 1, "gsi1pk": "CE", "gsi1sk": "a", "status": "VALID",
         "doc": {"k": [1, 2.5]}},
        {"pk": "CE#a", "sk": "USAGE", "mvcpus": 500},
    ]
    assert kit.store.query_partition("JD#a", "USAGE", raw=True) == [{"pk": "JD#a", "sk": "USAGE", "n": 2}]


# -- values ------------------------------------------------------------------------------

_DOC = {
    "name": "ジョブ ☃ \U0001f680 naïve",
    "floats": [0.1, 2.5, -1e-7, 1.0, 3e20],
    "ints": [0, -1, 2**53],
    "flags": {"on": True, "off": False},
    "nothing": None,
    "nested": {"list": [None, {"deep": [[], {}]}, "", 1.5], "empty": {}},
    "emptyList": [],
    "emptyMap": {},
    "text": "",
}


def test_item_round_trip_of_nested_values(kit: Kit) -> None:
    extra = {"status": "RUNNABLE", "expiresAt": 1_900_000_000, "tags": {"k": "ü", "n": [1, 2.5, True, None]},
             "empty": {}, "none": [], "ratio": 0.25, "flag": False, "label": "", "tuple": (1, "a")}
    kit.store.put_new(item("JOB#x", sk="JOB", doc=_DOC, gsi1=("JOBS#q#RUNNABLE", "0001#x"), **extra, whole=3.0))
    # Top-level attributes are DynamoDB numbers: a whole float comes back an int, a
    # tuple a list (the document is JSON, and keeps its floats as they were).
    extra |= {"whole": 3, "tuple": [1, "a"]}
    for got in (stored(kit, "JOB#x", "JOB"), kit.store.batch_get([("JOB#x", "JOB")])[0],
                kit.store.query_index("JOBS#q#RUNNABLE")[0][0], kit.store.query_partition("JOB#x", "JOB")[0]):
        assert got.doc == _DOC
        assert json.dumps(got.doc, sort_keys=True) == json.dumps(_DOC, sort_keys=True)  # floats stay floats
        assert got.extra == extra
        assert json.dumps(got.extra, sort_keys=True) == json.dumps(extra, sort_keys=True)


def test_values_a_fast_json_library_refuses_round_trip_too(kit: Kit) -> None:
    # A JSON body's "\ud800" escape decodes to a lone surrogate, which UTF-8 cannot hold;
    # an integer past 64 bits is valid JSON. The embedded store keeps both, as DynamoDB does.
    doc = {"name": "x\ud800y", "big": 2**70, "list": ["\udfff", -(2**65)]}
    kit.store.put_new(item("JOB#s", sk="JOB", doc=doc, gsi1=("JOBS#q#RUNNABLE", "0001#s"), status="RUNNABLE"))
    for got in (stored(kit, "JOB#s", "JOB"), kit.store.query_index("JOBS#q#RUNNABLE")[0][0]):
        assert got.doc == doc
        assert isinstance(got.doc["big"], int)
    changed = stored(kit, "JOB#s", "JOB")
    changed.doc["name"] = "plain"
    kit.store.replace(changed)
    assert stored(kit, "JOB#s", "JOB").doc == {**doc, "name": "plain"}


def test_a_none_attribute_is_not_stored(kit: Kit) -> None:
    kit.store.put_new(item("JOB#x", sk="JOB", status="RUNNABLE", reason=None))
    assert stored(kit, "JOB#x", "JOB").extra == {"status": "RUNNABLE"}
    assert kit.store.query_partition("JOB#x", "", raw=True)[0].keys() == {"pk", "sk", "version", "status", "doc"}


# -- the change stream -------------------------------------------------------------------


def _changes(kit: Kit) -> list[tuple[str, str, str]]:
    return [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"], r["dynamodb"]["Keys"]["sk"]["S"])
            for r in kit.records()]


def test_stream_records_of_put_replace_and_delete(kit: Kit) -> None:
    s = kit.store
    first = item("JOB#1", sk="JOB", doc=_DOC, gsi1=("JOBS#q#SUBMITTED", "1#1"), status="SUBMITTED")
    s.put_new(first)
    s.put_new(item("JOB#2", sk="JOB", status="SUBMITTED"))
    second = stored(kit, "JOB#1", "JOB")
    second.doc = {**_DOC, "status": "RUNNABLE"}
    second.gsi1pk, second.extra = "JOBS#q#RUNNABLE", {"status": "RUNNABLE", "tags": {"a": [1.5, None]}}
    s.replace(second)
    s.delete("JOB#1", "JOB", expected_version=2)
    records = kit.records()
    assert [(r["eventName"], r["dynamodb"]["Keys"]) for r in records] == [
        ("INSERT", {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}}),
        ("INSERT", {"pk": {"S": "JOB#2"}, "sk": {"S": "JOB"}}),
        ("MODIFY", {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}}),
        ("REMOVE", {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}}),
    ]
    for r in records:
        assert r["eventSource"] == "aws:dynamodb" and r["eventID"] and r["eventVersion"]
        change = r["dynamodb"]
        assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(change["ApproximateCreationDateTime"], int | float)
        assert isinstance(change["SizeBytes"], int) and change["SizeBytes"] > 0
        assert "userIdentity" not in r
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    first.version = 1
    insert, _, modify, remove = (r["dynamodb"] for r in records)
    assert "OldImage" not in insert and deserialize(insert["NewImage"]) == image(first)
    assert deserialize(modify["OldImage"]) == image(first)
    assert deserialize(modify["NewImage"]) == image(second)
    assert modify["NewImage"]["status"] == {"S": "RUNNABLE"}  # what filter patterns match on
    assert modify["NewImage"]["gsi1pk"] == {"S": "JOBS#q#RUNNABLE"}
    assert modify["NewImage"]["version"] == {"N": "2"}
    assert "NewImage" not in remove and deserialize(remove["OldImage"]) == image(second)


def test_failed_writes_add_no_stream_record(kit: Kit) -> None:
    s = kit.store
    s.put_new(item("JOB#1", sk="JOB", status="RUNNABLE"))
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": 4000}, {"mvcpus": 4000})])
    before = kit.records()
    assert [r["eventName"] for r in before] == ["INSERT", "INSERT"]
    stale = stored(kit, "JOB#1", "JOB")
    stale.version = 5
    for write in (lambda: s.put_new(item("JOB#1", sk="JOB")),
                  lambda: s.replace(stale),
                  lambda: s.delete("JOB#1", "JOB", expected_version=9),
                  lambda: s.delete("JOB#none", "JOB", expected_version=1),
                  lambda: s.transact_or_put(s.put_new_op(item("JOB#1", sk="JOB"))),
                  lambda: s.transact([s.put_new_op(item("JOB#3", sk="JOB")),
                                      s.add_op("CE#a", "USAGE", {"mvcpus": 1}, {"mvcpus": 4000})]),
                  lambda: s.transact([s.put_new_op(item("JOB#3", sk="JOB")),
                                      s.check_op("JOB#1", "JOB", "status", ("RUNNABLE",))])):
        with pytest.raises(ConflictError):
            write()
    s.delete("JOB#none", "JOB")  # deleting nothing changes nothing
    assert kit.records() == before


def test_add_op_stream_records(kit: Kit) -> None:
    s = kit.store
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": 1000})])
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": 500, "jobs": 1})])
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": -1500, "jobs": -1})])
    records = kit.records()
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "MODIFY"]
    assert "OldImage" not in records[0]["dynamodb"]
    images = [(deserialize(r["dynamodb"].get("OldImage", {})), deserialize(r["dynamodb"]["NewImage"]))
              for r in records]
    key = {"pk": "CE#a", "sk": "USAGE"}
    assert images == [
        ({}, {**key, "mvcpus": 1000}),
        ({**key, "mvcpus": 1000}, {**key, "mvcpus": 1500, "jobs": 1}),
        ({**key, "mvcpus": 1500, "jobs": 1}, {**key, "mvcpus": 0, "jobs": 0}),
    ]


def test_a_write_that_changes_nothing_adds_no_record(kit: Kit) -> None:
    s = kit.store
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": 1000})])
    before = kit.records()
    s.transact([s.add_op("CE#a", "USAGE", {"mvcpus": 0})])
    assert kit.records() == before
    assert s.counters("CE#a", "USAGE") == {"mvcpus": 1000}
    s.transact([s.add_op("CE#a", "USAGE", {"jobs": 0})])  # a new counter, even at 0, is a change
    assert [r["eventName"] for r in kit.records()[len(before):]] == ["MODIFY"]


def test_a_transaction_writes_one_record_per_item(kit: Kit) -> None:
    _seed_for_transactions(kit)
    before = len(kit.records())
    s = kit.store
    job = stored(kit, "JOB#1", "JOB")
    s.transact([s.replace_op(job), s.put_new_op(item("JOB#2", sk="JOB")),
                s.add_op("CE#a", "USAGE", {"mvcpus": 1000}), s.check_op("JQ#q", "#", "status", ("DELETED",))])
    assert sorted(_changes(kit)[before:]) == [("INSERT", "JOB#2", "JOB"), ("MODIFY", "CE#a", "USAGE"),
                                              ("MODIFY", "JOB#1", "JOB")]


# -- the embedded store's own machinery (SQLite only) -------------------------------------


def test_in_memory_store() -> None:
    store = SqliteStore(":memory:")
    store.put_new(item("A", gsi1=("X", "a")))
    assert store.get("A", "#") is not None
    assert [i.pk for i in store.query_index("X")[0]] == ["A"]
    assert [r["eventName"] for _, r in store.records(after=0, limit=10)] == ["INSERT"]
    store.close()


# moto's DynamoDB never expires items: TTL is the embedded store's own sweep, held here
# to what DynamoDB's TTL process does (items past expiresAt go, each with a REMOVE by
# the service).
@pytest.mark.parametrize("kit", ["sqlite"], indirect=True)
def test_ttl_expires_items_with_service_remove_records(kit: Kit) -> None:
    assert isinstance(kit.store, SqliteStore)
    s = kit.store
    s.put_new(item("JOB#old", sk="JOB", expiresAt=1000, status="SUCCEEDED"))
    s.put_new(item("JOB#due", sk="JOB", expiresAt=2000))
    s.put_new(item("JOB#new", sk="JOB", expiresAt=3000))
    s.put_new(item("JOB#kept", sk="JOB"))
    s.put_new(item("JOB#text", sk="JOB", expiresAt="1000"))  # not a number: no TTL, as DynamoDB
    before = len(kit.records())
    assert s.expire(2000) == 1
    assert s.expire(2001) == 1
    assert s.expire(2001) == 0
    assert sorted(i.pk for i in s.batch_get([(pk, "JOB") for pk in ("JOB#old", "JOB#due", "JOB#new",
                                                                      "JOB#kept", "JOB#text")])) == \
           ["JOB#kept", "JOB#new", "JOB#text"]
    removed = kit.records()[before:]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in removed] == \
           [("REMOVE", "JOB#old"), ("REMOVE", "JOB#due")]
    for r in removed:
        assert r["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        assert "NewImage" not in r["dynamodb"]
    assert deserialize(removed[0]["dynamodb"]["OldImage"])["status"] == "SUCCEEDED"


def test_checkpoints_keep_the_furthest_and_trim_forgets_what_all_passed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    for n in range(5):
        store.put_new(item(f"A{n}"))
    assert store.checkpoint("scheduler") is None
    store.save_checkpoint("scheduler", 4)
    store.save_checkpoint("scheduler", 2)  # never back
    assert store.checkpoint("scheduler") == 4
    assert store.trim_stream(["scheduler", "events"]) == 0  # "events" has not read anything yet
    store.save_checkpoint("events", 3)
    assert store.trim_stream(["scheduler", "events"]) == 3
    assert [seq for seq, _ in store.records(after=0, limit=10)] == [4, 5]
    assert store.last_sequence() == 5
    store.close()


def test_a_reopened_store_keeps_items_records_and_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "data" / "store.db"
    store = SqliteStore(path)
    store.put_new(item("CE#a", gsi1=("CE", "a"), status="VALID"))
    store.transact([store.add_op("CE#a", "USAGE", {"mvcpus": 1000})])
    store.save_checkpoint("scheduler", 1)
    records = store.records(after=0, limit=10)
    store.close()
    again = SqliteStore(path)
    reread = again.get("CE#a", "#")
    assert reread is not None
    same(reread, Item("CE#a", "#", {"name": "CE#a"}, 1, "CE", "a", {"status": "VALID"}))
    assert again.counters("CE#a", "USAGE") == {"mvcpus": 1000}
    assert [i.pk for i in again.query_index("CE")[0]] == ["CE#a"]
    assert again.records(after=0, limit=10) == records
    assert again.checkpoint("scheduler") == 1
    again.put_new(item("CE#b"))
    assert again.last_sequence() == 3
    again.close()


_WRITE_THEN_DIE = """
import os, sys
from batchplane.store import Item
from batchplane.store.sqlite import SqliteStore
store = SqliteStore(sys.argv[1])
store.put_new(Item("JOB#1", "JOB", {"status": "SUBMITTED"}, gsi1pk="JOBS#q#SUBMITTED", gsi1sk="1"))
store.transact([store.add_op("CE#a", "USAGE", {"mvcpus": 1000})])
store.save_checkpoint("scheduler", 1)
os.kill(os.getpid(), 9)  # no close, no clean exit: as kill -9
"""


def test_what_was_committed_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    died = subprocess.run([sys.executable, "-c", _WRITE_THEN_DIE, str(path)], capture_output=True, timeout=60,
                          check=False)
    assert died.returncode == -9, died.stderr.decode()
    store = SqliteStore(path)
    assert [i.pk for i in store.query_index("JOBS#q#SUBMITTED")[0]] == ["JOB#1"]
    assert store.counters("CE#a", "USAGE") == {"mvcpus": 1000}
    assert [r["eventName"] for _, r in store.records(after=0, limit=10)] == ["INSERT", "INSERT"]
    assert store.checkpoint("scheduler") == 1
    store.close()
