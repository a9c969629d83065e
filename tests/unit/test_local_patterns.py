"""local/patterns.py answers as moto's EventPattern does, on generated events and
patterns (values, prefix, suffix, anything-but, exists, numeric, $or, nesting), without
copying the event."""

from __future__ import annotations

import json
from typing import Any

from batchplane.local import patterns
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern

KEYS = st.sampled_from(["a", "b", "status", "S", "detail"])
SCALARS = st.one_of(st.sampled_from(["x", "xy", "RUNNABLE", "JOB", "CE#1", ""]), st.integers(-3, 3), st.booleans(),
                    st.none())
VALUES = st.recursive(
    st.one_of(SCALARS, st.lists(SCALARS, max_size=3)),
    lambda inner: st.dictionaries(KEYS, inner, max_size=3), max_leaves=8)
EVENTS = st.dictionaries(KEYS, VALUES, max_size=4)

STRINGS = st.sampled_from(["x", "RUNNABLE", "CE#", "J"])
FILTERS = st.one_of(
    SCALARS,
    st.builds(lambda v: {"prefix": v}, STRINGS),
    st.builds(lambda v: {"suffix": v}, STRINGS),
    st.builds(lambda v: {"anything-but": v}, st.one_of(STRINGS, st.lists(STRINGS, min_size=1, max_size=2))),
    st.builds(lambda v: {"exists": v}, st.booleans()),
    st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(["<", ">=", "="]), st.integers(-3, 3)),
    st.builds(lambda v: {"equals-ignore-case": v}, STRINGS),
)
LEAVES = st.lists(FILTERS, min_size=1, max_size=3)
PATTERNS = st.recursive(
    st.dictionaries(KEYS, LEAVES, min_size=1, max_size=3),
    lambda inner: st.one_of(
        st.dictionaries(KEYS, inner, min_size=1, max_size=2),
        st.builds(lambda ps: {"$or": ps}, st.lists(inner, min_size=1, max_size=2)),
    ),
    max_leaves=6)


def _moto(pattern: EventPattern, event: dict[str, Any]) -> bool:
    """moto's own answer: a JSON copy of the event, flattened, then matched."""
    if not pattern.get_pattern():
        return True
    flat = EventPattern._flatten_dict(json.loads(json.dumps(event)))
    return bool(pattern._does_event_match(flat, pattern.get_pattern()))


@settings(max_examples=600, deadline=None)
@given(PATTERNS, EVENTS)
def test_answers_as_moto_does(spec: dict[str, Any], event: dict[str, Any]) -> None:
    pattern = EventPattern.load(json.dumps(spec))
    assert patterns.matches(pattern, event) == _moto(pattern, event), (spec, event)


def test_the_templates_stream_filters() -> None:
    runnable = EventPattern.load(json.dumps({"dynamodb": {
        "Keys": {"sk": {"S": ["JOB"]}},
        "NewImage": {"status": {"S": [{"anything-but": ["SUBMITTED"]}]}, "events": {"S": [{"exists": False}]}}}}))
    record = {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}},
                                                  "NewImage": {"status": {"S": "RUNNABLE"}}}}
    assert patterns.matches(runnable, record)
    record["dynamodb"]["NewImage"]["status"]["S"] = "SUBMITTED"
    assert not patterns.matches(runnable, record)
    record["dynamodb"]["NewImage"].update(status={"S": "RUNNING"}, events={"S": "off"})
    assert not patterns.matches(runnable, record)
    # exists applies to leaves only (AWS's docs): on the object {"S": "off"} it matches.
    on_object = EventPattern.load('{"dynamodb": {"NewImage": {"events": [{"exists": false}]}}}')
    assert patterns.matches(on_object, record)
    ce = EventPattern.load('{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "CE#"}]}, "sk": {"S": ["#"]}}}}')
    assert patterns.matches(ce, {"dynamodb": {"Keys": {"pk": {"S": "CE#a"}, "sk": {"S": "#"}}}})
    assert not patterns.matches(ce, {"dynamodb": {"Keys": {"pk": {"S": "CE#a"}, "sk": {"S": "USAGE"}}}})
