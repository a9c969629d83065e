"""What the operations on Batch's named resources share: the page size of a request, a
Describe* by names or by pages, and creating, replacing and deleting an item with the
client error a lost race gives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import arns
from ..errors import ClientException, ConflictError

MAX_REFS = 100  # names or ARNs a Describe* request takes

if TYPE_CHECKING:
    from ..store import Item, Store
    from ..store.resources import Named


def page_size(value: Any, default: int, hi: int, what: str = "maxResults") -> int:
    """``value`` (a request's maxResults), or ``default`` if it is not given."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise ClientException(f"{what} must be an integer from 1 to {hi}; got {value!r}.")
    return value


def listed(field: str, docs: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    """A listing's answer: ``docs`` under ``field``, and nextToken if there is a next page."""
    out: dict[str, Any] = {field: docs}
    if token:
        out["nextToken"] = token
    return out


def describe(kind: Named, request: dict[str, Any], refs_field: str, arn_kind: str, field: str) -> dict[str, Any]:
    """A Describe* of named resources: the ones ``request[refs_field]`` names (names or
    ARNs of ``arn_kind``, at most 100), or else one page of all of them, by name."""
    refs = request.get(refs_field) or []
    if len(refs) > MAX_REFS:
        raise ClientException(f"{refs_field} takes at most 100 names or ARNs.")
    limit = page_size(request.get("maxResults"), 100, 100)
    names = [arns.name_from(r, arn_kind) for r in refs]
    if names:
        return listed(field, [i.doc for i in kind.get_many(names)], None)
    items, token = kind.page(limit=limit, token=request.get("nextToken"))
    return listed(field, [i.doc for i in items], token)


def create(kind: Named, name: str, doc: dict[str, Any], what: str) -> None:
    try:
        kind.create(name, doc)
    except ConflictError as e:
        raise ClientException(f"{what} {name} already exists.") from e


def replace(store: Store, item: Item, what: str) -> None:
    """Write ``item`` back if nobody changed it since it was read."""
    try:
        store.replace(item)
    except ConflictError as e:
        raise ClientException(
            f"{what} was changed by another request at the same time; read it again and retry."
        ) from e


def delete(kind: Named, item: Item, what: str, name: str) -> None:
    """Delete ``item`` if nobody changed it since it was read (a concurrent delete or
    update loses nothing and gets a client error, not a 500)."""
    try:
        kind.delete(name, item.version)
    except ConflictError as e:
        if kind.get(name) is None:
            raise ClientException(f"{what} {name} does not exist: another request deleted it.") from e
        raise ClientException(
            f"{what} {name} was changed by another request at the same time; read it again and retry."
        ) from e
