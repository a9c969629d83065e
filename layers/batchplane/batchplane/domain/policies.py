"""Scheduling policies (fair share): validation and the described shape."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ClientException
from . import checks

_SHARE = re.compile(r"[A-Za-z0-9_-]{1,255}\*?")
MAX_SHARES = 500
MIN_WEIGHT, MAX_WEIGHT = 0.0001, 999.9999  # a share's weightFactor


def fairshare(value: Any) -> dict[str, Any]:
    if value is None:
        return {"shareDecaySeconds": 0, "computeReservation": 0, "shareDistribution": []}
    if not isinstance(value, dict):
        raise ClientException("fairsharePolicy must be an object.")
    out: dict[str, Any] = {
        "shareDecaySeconds": checks.int_range(
            value.get("shareDecaySeconds", 0), 0, 604800, "fairsharePolicy.shareDecaySeconds"
        ),
        "computeReservation": checks.int_range(
            value.get("computeReservation", 0), 0, 99, "fairsharePolicy.computeReservation"
        ),
    }
    shares = value.get("shareDistribution") or []
    if not isinstance(shares, list) or len(shares) > MAX_SHARES:
        raise ClientException(f"shareDistribution takes a list of at most {MAX_SHARES} shares.")
    seen = set()
    dist = []
    for share in shares:
        ident = share.get("shareIdentifier") if isinstance(share, dict) else None
        if not isinstance(ident, str) or not _SHARE.fullmatch(ident):
            raise ClientException(
                f"shareIdentifier {ident!r} is not valid: use up to 255 letters, numbers, "
                "hyphens and underscores, optionally ending in * to match a prefix."
            )
        if ident in seen:
            raise ClientException(f"shareDistribution lists {ident!r} twice.")
        seen.add(ident)
        entry: dict[str, Any] = {"shareIdentifier": ident}
        if "weightFactor" in share:
            weight = share["weightFactor"]
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise ClientException(f"weightFactor of {ident!r} must be a number.")
            if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
                raise ClientException(
                    f"weightFactor of {ident!r} must be between 0.0001 and 999.9999; got {weight}."
                )
            entry["weightFactor"] = weight
        dist.append(entry)
    # AWS: identifiers may not overlap (UserA* with UserA1, or User* with UserA*), since a
    # job's share would otherwise match two weights.
    idents = [e["shareIdentifier"] for e in dist]
    for prefix in (i[:-1] for i in idents if i.endswith("*")):
        for other in idents:
            if other != f"{prefix}*" and other.rstrip("*").startswith(prefix):
                raise ClientException(
                    f"shareDistribution identifiers {prefix + '*'!r} and {other!r} overlap: "
                    "a prefix (ending in *) may not match another listed shareIdentifier."
                )
    out["shareDistribution"] = dist
    return out


def create(request: dict[str, Any], arn: str) -> dict[str, Any]:
    return {
        "name": checks.name(request.get("name"), "name"),
        "arn": arn,
        "fairsharePolicy": fairshare(request.get("fairsharePolicy")),
        "tags": checks.tags(request.get("tags")),
    }
