"""Verifying AWS Signature Version 4 on the server, as AWS does for every Batch call.

The request is canonicalized the way the AWS SDKs sign it (botocore's own path
normalization, so that both sides agree byte for byte), its signature computed with the
secret key of the access key it names, and compared in constant time. The clock window is
AWS's: a request whose X-Amz-Date is more than 15 minutes away from the server's time is
refused. Refusals carry the error codes and wording AWS answers with, so SDKs and tools
report them as they would on AWS.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from botocore.utils import normalize_url_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

ALGORITHM = "AWS4-HMAC-SHA256"
CLOCK_SKEW = timedelta(minutes=15)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request\s*,\s*"
    r"SignedHeaders=([a-z0-9;\-_.]+)\s*,\s*Signature=([0-9a-f]{64})\s*$"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


@dataclass
class Refusal(Exception):
    """A request that is not signed by a key this server knows. ``code`` is AWS's."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def verify(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes, *,
           secret_for: Callable[[str], str | None], region: str, service: str,
           now: datetime | None = None) -> str:
    """The access key that signed the request; Refusal if it is unsigned, names a key
    ``secret_for`` does not know, is scoped to another region, service or day, is stale
    or early by more than CLOCK_SKEW, or its signature does not match its method, path,
    query, signed headers and body. ``target`` is the request line's path and query, as
    sent."""
    fields: dict[str, list[str]] = {}
    for name, value in headers:
        fields.setdefault(name.lower(), []).append(value)
    auth = (fields.get("authorization") or [""])[0]
    if not auth:
        raise Refusal("MissingAuthenticationTokenException",
                      "Missing Authentication Token: sign the request with AWS Signature Version 4")
    match = _AUTH.match(auth.strip())
    if match is None:
        raise Refusal("IncompleteSignatureException",
                      f"Authorization header requires '{ALGORITHM} Credential=.../aws4_request, "
                      "SignedHeaders=..., Signature=<64 hex digits>'")
    key_id, day, signed_region, signed_service, signed_headers, signature = match.groups()
    secret = secret_for(key_id)
    if secret is None:
        raise Refusal("UnrecognizedClientException",
                      f"The security token included in the request is invalid: access key {key_id} "
                      "is not one this batchplane knows")
    if signed_service != service:
        raise Refusal("InvalidSignatureException",
                      f"Credential should be scoped to correct service: '{service}' (it is '{signed_service}')")
    if signed_region != region:
        raise Refusal("InvalidSignatureException",
                      f"Credential should be scoped to a valid region: this batchplane serves the region "
                      f"{region}, and the request was signed for {signed_region}: set the client's region "
                      f"to {region} (region_name, AWS_REGION or --region)")
    stamp = (fields.get("x-amz-date") or [""])[0]
    try:
        signed_at = datetime.strptime(stamp, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise Refusal("IncompleteSignatureException",
                      f"X-Amz-Date must be a time such as 20261203T101500Z, not {stamp[:40]!r}") from None
    if stamp[:8] != day:
        raise Refusal("InvalidSignatureException",
                      f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
                      f"HTTP: '{day}' != '{stamp[:8]}'")
    now = now or datetime.now(UTC)
    if signed_at < now - CLOCK_SKEW:
        raise Refusal("InvalidSignatureException",
                      f"Signature expired: {stamp} is now earlier than {_amz(now - CLOCK_SKEW)} "
                      f"({_amz(now)} - 15 min.)")
    if signed_at > now + CLOCK_SKEW:
        raise Refusal("InvalidSignatureException",
                      f"Signature not yet current: {stamp} is still later than {_amz(now + CLOCK_SKEW)} "
                      f"({_amz(now)} + 15 min.)")
    names = signed_headers.split(";")
    if "host" not in names:
        raise Refusal("InvalidSignatureException", "The host header must be signed")
    if any(n not in fields for n in names):
        missing = ", ".join(n for n in names if n not in fields)
        raise Refusal("InvalidSignatureException", f"Signed headers missing from the request: {missing}")
    payload = hashlib.sha256(body).hexdigest()
    declared = (fields.get("x-amz-content-sha256") or [payload])[0]
    if declared != payload:
        raise Refusal("InvalidSignatureException",
                      "The provided x-amz-content-sha256 header does not match what was computed from the body")
    canonical = "\n".join([
        method.upper(),
        _canonical_path(target),
        _canonical_query(target),
        "".join(f"{n}:{','.join(' '.join(v.split()) for v in fields[n])}\n" for n in names),
        signed_headers,
        payload,
    ])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(_signing_key(secret, day, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Refusal("InvalidSignatureException",
                      "The request signature we calculated does not match the signature you provided. "
                      "Check your AWS Secret Access Key and signing method.")
    return key_id


def _canonical_path(target: str) -> str:
    # The SDKs sign the path as sent, URI-encoded once more (except for S3).
    return quote(normalize_url_path(urlsplit(target).path), safe="/~")


def _canonical_query(target: str) -> str:
    query = urlsplit(target).query
    if not query:
        return ""
    pairs = sorted(tuple(p.partition("=")[::2]) for p in query.split("&"))
    return "&".join(f"{k}={v}" for k, v in pairs)


def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _amz(at: datetime) -> str:
    return at.strftime(_AMZ_DATE)
