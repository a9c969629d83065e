"""Server-side SigV4 verification against botocore's own signing: what the SDKs sign
verifies, and every change to it (key, body, path, query, a signed header, the scope, the
clock) is refused with AWS's error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from batchplane.sigv4 import Refusal, verify
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st

KEYS = {"AKIDLOCAL": "secret/with+chars", "OTHER": "another-secret"}
HOST = "127.0.0.1:4566"


def _signed(*, method: str = "POST", target: str = "/v1/submitjob", body: bytes = b'{"jobName": "a"}',  # noqa: PLR0913 - keyword-only, each a part of the request to sign, with a default
            key: str = "AKIDLOCAL", secret: str | None = None, region: str = "us-east-1",
            service: str = "batch", headers: dict[str, str] | None = None, token: str | None = None) -> dict[str, Any]:
    request = AWSRequest(method=method, url=f"http://{HOST}{target}", data=body,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(key, secret or KEYS.get(key, "x"), token), service, region).add_auth(request)
    sent = [(k, v) for k, v in request.headers.items()]
    sent.append(("Host", HOST))
    return {"method": method, "target": target, "headers": sent, "body": body}


def _verify(req: dict[str, Any], *, now: datetime | None = None, region: str = "us-east-1") -> str:
    return verify(req["method"], req["target"], req["headers"], req["body"], secret_for=KEYS.get,
                  region=region, service="batch", now=now)


def _code(req: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(Refusal) as info:
        _verify(req, **kwargs)
    return info.value.code


def test_what_botocore_signs_verifies_as_its_access_key() -> None:
    assert _verify(_signed()) == "AKIDLOCAL"
    assert _verify(_signed(key="OTHER")) == "OTHER"
    assert _verify(_signed(token="session-token")) == "AKIDLOCAL"  # X-Amz-Security-Token is signed too


@given(path=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3),
       query=st.dictionaries(st.text(min_size=1, max_size=6), st.text(max_size=8), max_size=3),
       body=st.binary(max_size=200))
def test_any_path_query_and_body_the_sdk_sends_verifies(path: list[str], query: dict[str, str], body: bytes) -> None:
    target = "/v1/" + "/".join(quote(p, safe="") for p in path)
    if query:
        target += "?" + urlencode(query, quote_via=quote)
    assert _verify(_signed(target=target, body=body)) == "AKIDLOCAL"


def test_a_tag_resource_path_with_an_arn_verifies() -> None:
    target = "/v1/tags/arn%3Aaws%3Abatch%3Aus-east-1%3A123456789012%3Ajob-queue%2Fq"
    assert _verify(_signed(method="GET", target=target, body=b"")) == "AKIDLOCAL"


def test_an_unsigned_request_is_missing_its_token() -> None:
    req = _signed()
    req["headers"] = [(k, v) for k, v in req["headers"] if k.lower() != "authorization"]
    assert _code(req) == "MissingAuthenticationTokenException"


def test_an_unknown_access_key_is_unrecognized() -> None:
    assert _code(_signed(key="STRANGER", secret="guess")) == "UnrecognizedClientException"


def test_a_wrong_secret_does_not_match() -> None:
    assert _code(_signed(secret="not-the-secret")) == "InvalidSignatureException"


def test_a_tampered_body_path_query_or_signed_header_does_not_match() -> None:
    for change in (
        {"body": b'{"jobName": "b"}'},
        {"target": "/v1/canceljob"},
        {"method": "PUT"},
    ):
        assert _code({**_signed(), **change}) == "InvalidSignatureException", change
    req = _signed(target="/v1/listjobs?a=1")
    assert _code({**req, "target": "/v1/listjobs?a=2"}) == "InvalidSignatureException"
    req = _signed()
    req["headers"] = [(k, "text/plain" if k == "Content-Type" else v) for k, v in req["headers"]]
    assert _code(req) == "InvalidSignatureException"


def test_a_body_hash_header_that_is_not_the_bodys_is_refused() -> None:
    req = _signed(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert _code(req) == "InvalidSignatureException"


def test_another_region_service_or_day_in_the_scope_is_refused() -> None:
    with pytest.raises(Refusal) as info:
        _verify(_signed(region="us-west-2"))
    assert info.value.code == "InvalidSignatureException"
    assert "us-east-1" in info.value.message and "us-west-2" in info.value.message
    assert _code(_signed(service="execute-api")) == "InvalidSignatureException"
    req = _signed()
    auth = next(v for k, v in req["headers"] if k == "Authorization")
    day = auth.split("/")[1]
    other_day = (datetime.strptime(day, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    req["headers"] = [(k, v.replace(f"/{day}/", f"/{other_day}/") if k == "Authorization" else v)
                      for k, v in req["headers"]]
    assert _code(req) == "InvalidSignatureException"


def test_a_date_more_than_15_minutes_away_is_refused() -> None:
    req = _signed()
    stamp = next(v for k, v in req["headers"] if k == "X-Amz-Date")
    signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert _verify(req, now=signed_at + timedelta(minutes=14)) == "AKIDLOCAL"
    assert _verify(req, now=signed_at - timedelta(minutes=14)) == "AKIDLOCAL"
    for off in (timedelta(minutes=16), -timedelta(minutes=16)):
        with pytest.raises(Refusal) as info:
            _verify(req, now=signed_at + off)
        assert info.value.code == "InvalidSignatureException"
        assert ("expired" if off > timedelta(0) else "not yet current") in info.value.message


def test_a_malformed_authorization_header_is_incomplete() -> None:
    req = _signed()
    req["headers"] = [(k, "AWS4-HMAC-SHA256 Credential=x" if k == "Authorization" else v)
                      for k, v in req["headers"]]
    assert _code(req) == "IncompleteSignatureException"


def test_the_host_must_be_signed_and_present() -> None:
    req = _signed()
    req["headers"] = [(k, v) for k, v in req["headers"] if k != "Host"]
    assert _code(req) == "InvalidSignatureException"
