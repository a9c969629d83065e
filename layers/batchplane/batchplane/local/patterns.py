"""Event pattern matching (EventBridge rules, Lambda FilterCriteria) without moto's copies.

moto's ``EventPattern.matches_event`` serializes the whole event to JSON and back, then
flattens it into dotted keys, for every rule and every event: local mode's own events
carry a whole job, and stream records a compressed item, so that was a fifth of the
stack's CPU during a run of trivial jobs. ``matches`` walks the pattern over the event as
it is and leaves each leaf's filters (values, prefix, anything-but, numeric, exists...)
to moto's own code, so the answers are moto's: tests/unit/test_local_patterns.py
checks them against moto's matcher on generated events and patterns.
"""

from __future__ import annotations

from typing import Any

from moto.events.models import UNDEFINED, EventPattern


def _leaf(node: Any, key: str) -> Any:
    """What moto's flattened event holds at ``key`` under ``node``: a value, an empty
    object, or UNDEFINED (a missing key, or an object with keys, which flattening
    replaces by its own keys)."""
    if not isinstance(node, dict) or key not in node:
        return UNDEFINED
    value = node[key]
    return UNDEFINED if isinstance(value, dict) and value else value


def _child(node: Any, key: str) -> dict[str, Any]:
    """The object under ``key`` that a nested pattern walks into ({} when there is none)."""
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, dict) else {}


def matches(pattern: EventPattern, event: Any, node: Any = None) -> bool:
    """``pattern`` (its ``_pattern`` mapping, or ``node`` within it) matches ``event``."""
    spec = pattern.get_pattern() if node is None else node
    if not isinstance(spec, dict):
        return False
    for key, value in spec.items():
        if key == "$or":
            if not any(matches(pattern, event, p) for p in value):
                return False
        elif isinstance(value, dict):
            if not matches(pattern, _child(event, key), value):
                return False
        elif isinstance(value, list):
            if not pattern._does_item_match_filters(_leaf(event, key), value):  # noqa: SLF001 - moto's leaf rules
                return False
        else:
            return False
    return True


def matches_event(self: EventPattern, event: Any) -> bool:
    """``EventPattern.matches_event``, as moto_fixes installs it."""
    if not self.get_pattern():
        return True
    return matches(self, event)
