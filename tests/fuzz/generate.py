"""Requests generated from botocore's model of the Batch API, from a seed.

For every operation of the model, bodies built from its input shape in several modes:

- ``valid``: the right JSON type for every member, within the model's bounds (min/max
  length and value, enums), names of resources the stack has, so that requests reach
  deep into validation;
- ``bounds``: each string, list and number at its bounds and one past them, huge
  strings (64 KiB and 1 MiB), numbers past 64 bits, floats where integers go;
- ``types``: one member (or all) of the wrong JSON type;
- ``unicode``: lone surrogates (as JSON escapes), NUL, right-to-left marks, emoji,
  combining characters, overlong names;
- ``nesting``: structures and lists nested hundreds deep, maps with many keys, unknown
  members.

And ``leaf_requests``: each base with each place set in turn to each extreme of its
type (10**309, 400 nines, NUL, a lone surrogate, 70,000 characters ...); ``extension_requests``
likewise for batchplane's own operations (triggers and schedules). And
``mutated_requests``: a request the stack accepts (``BASES``, one for each operation
that makes or changes something), with one or two places changed: a member replaced by a
value of the wrong type, at or past its bounds or of odd text, or an optional member the
base leaves out added. A mode-generated body is mostly refused at its first wrong member;
a base with one change reaches the checks deep inside it, and the code past them.

Plus raw HTTP (``raw_requests``): bodies that are not JSON or not an object, wrong
methods, unknown and odd paths, bad headers, bodies of 1 MiB and more.

Each request is (method, path, headers, body, label).
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import botocore.session

if TYPE_CHECKING:
    from collections.abc import Iterator

MODEL = botocore.session.get_session().get_service_model("batch")
Request = tuple[str, str, dict[str, str], bytes, str]

# Names the stack has (the test creates them), and look-alikes.
NAMES = ["fz-ce", "fz-q", "fz-def", "fz-def:1", "fz-policy"]
ODD_STRINGS = [
    "", " ", "x", "*", "Ref::x", "a:b:c", "name:notanumber", "../..", "%00", "%2F", "\\", "'", '"',
    "\u0000", "\ud800", "\udfff", "\u202e", "\ufeff", "e\u0301", "💥", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\n\r\t", "null", "true",
    "arn:aws:batch:us-east-1:123456789012:job-queue/", "arn:aws:batch:us-east-1:123456789012:job/x",
    "arn:aws:batch:us-east-1:123456789012:job-definition/fz-def:1", "arn:aws:iam::123456789012:role/x",
    "ENABLED", "DISABLED", "RUNNABLE", "VCPU", "MEMORY", "GPU", "0.25", "-1", "1e309", "NaN",
]
HUGE = ["a" * 1025, "é" * 40_000, "x" * 65_536, "y" * (1 << 20)]
# 10**309 is past the largest float (float() of it raises OverflowError).
INTS = [0, 1, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63, 2**64, -(2**64), 10**40, 10**309]
MODES = ("valid", "bounds", "types", "unicode", "nesting")
# Numbers as strings (resourceRequirements values, shares): past float, and odd spellings.
NUMERIC = ["9" * 400, "1" + "0" * 309, "0", "00", "0.0000001", "1e3", "1.", ".5", "01", "4294967296", "-1", "inf"]

# Requests the stack accepts ({n}: a name no other request uses), for mutated_requests.
_CONTAINER = {
    "image": "busybox", "command": ["echo", "Ref::greeting"], "jobRoleArn": "arn:aws:iam::123456789012:role/job",
    "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
    "environment": [{"name": "A", "value": "1"}], "mountPoints": [], "volumes": [], "ulimits": [],
}
BASES: list[tuple[str, dict[str, Any]]] = [
    ("SubmitJob", {
        "jobName": "fz-{n}", "jobQueue": "fz-q", "jobDefinition": "fz-def", "parameters": {"greeting": "hi"},
        "containerOverrides": {"command": ["echo", "x"], "environment": [{"name": "B", "value": "2"}],
                               "resourceRequirements": [{"type": "VCPU", "value": "1"}]},
        "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "RETRY"}]},
        "timeout": {"attemptDurationSeconds": 60}, "tags": {"k": "v"}, "propagateTags": True,
    }),
    ("SubmitJob", {"jobName": "fz-{n}", "jobQueue": "fz-q", "jobDefinition": "fz-def", "arrayProperties": {"size": 2},
                   "dependsOn": []}),
    ("RegisterJobDefinition", {
        "jobDefinitionName": "fz-{n}", "type": "container", "parameters": {"greeting": "hi"},
        "containerProperties": _CONTAINER, "retryStrategy": {"attempts": 3}, "timeout": {"attemptDurationSeconds": 120},
        "tags": {"k": "v"}, "schedulingPriority": 5, "platformCapabilities": ["EC2"],
    }),
    ("RegisterJobDefinition", {
        "jobDefinitionName": "fz-{n}", "type": "container", "platformCapabilities": ["FARGATE"],
        "containerProperties": {"image": "busybox", "command": ["true"],
                                "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
                                "resourceRequirements": [{"type": "VCPU", "value": "0.25"},
                                                         {"type": "MEMORY", "value": "512"}],
                                "networkConfiguration": {"assignPublicIp": "ENABLED"},
                                "fargatePlatformConfiguration": {"platformVersion": "LATEST"}},
    }),
    ("RegisterJobDefinition", {
        "jobDefinitionName": "fz-{n}", "type": "multinode",
        "nodeProperties": {"numNodes": 2, "mainNode": 0,
                           "nodeRangeProperties": [{"targetNodes": "0:1", "container": _CONTAINER}]},
    }),
    ("CreateComputeEnvironment", {
        "computeEnvironmentName": "fz-{n}", "type": "MANAGED", "state": "DISABLED",
        "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "desiredvCpus": 0,
                             "instanceTypes": ["optimal"], "subnets": ["subnet-12345678"],
                             "securityGroupIds": ["sg-12345678"],
                             "instanceRole": "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole"},
        "tags": {"k": "v"},
    }),
    ("UpdateComputeEnvironment", {"computeEnvironment": "fz-ce", "state": "DISABLED",
                                 "computeResources": {"minvCpus": 0, "maxvCpus": 1}}),
    ("CreateJobQueue", {
        "jobQueueName": "fz-{n}", "state": "DISABLED", "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "fz-ce"}], "tags": {"k": "v"},
    }),
    ("UpdateJobQueue", {"jobQueue": "fz-q", "state": "ENABLED", "priority": 1,
                       "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "fz-ce"}]}),
    ("CreateSchedulingPolicy", {
        "name": "fz-{n}", "fairsharePolicy": {"shareDecaySeconds": 60, "computeReservation": 10,
                                              "shareDistribution": [{"shareIdentifier": "a", "weightFactor": 0.5}]},
        "tags": {"k": "v"},
    }),
    ("DescribeJobs", {"jobs": ["00000000-0000-0000-0000-000000000000"]}),
    ("ListJobs", {"jobQueue": "fz-q", "jobStatus": "RUNNABLE", "maxResults": 10,
                 "filters": [{"name": "JOB_NAME", "values": ["fz*"]}]}),
    ("DescribeJobDefinitions", {"jobDefinitionName": "fz-def", "status": "ACTIVE", "maxResults": 10}),
    ("DescribeJobQueues", {"jobQueues": ["fz-q"], "maxResults": 10}),
    ("DescribeComputeEnvironments", {"computeEnvironments": ["fz-ce"], "maxResults": 10}),
    ("GetJobQueueSnapshot", {"jobQueue": "fz-q"}),
    ("CancelJob", {"jobId": "00000000-0000-0000-0000-000000000000", "reason": "fuzz"}),
    ("TerminateJob", {"jobId": "00000000-0000-0000-0000-000000000000", "reason": "fuzz"}),
]


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # -- values ---------------------------------------------------------------------

    def value(self, shape: Any, mode: str, depth: int = 0) -> Any:  # noqa: PLR0911 - one return a kind of shape
        kind = shape.type_name
        rng = self.rng
        if mode == "types" and rng.random() < 0.25:
            return self.wrong_type(kind)
        if kind == "structure":
            members = list(shape.members.items())
            if depth > 6:
                return {}
            required = set(shape.required_members)
            chosen = [(n, m) for n, m in members if n in required or rng.random() < 0.6]
            out = {n: self.value(m, mode, depth + 1) for n, m in chosen}
            if mode == "nesting" and rng.random() < 0.3:
                out[rng.choice(["unknownMember", "__proto__", "jobName ", ""])] = self.deep(rng.randint(50, 400))
            return out
        if kind == "list":
            n = self.length(shape, mode, cap=4)
            if mode == "nesting" and depth <= 1 and rng.random() < 0.2:
                n = rng.choice([100, 1000])  # long lists, of members kept short below
                return [self.value(shape.member, "valid", 6) for _ in range(n)]
            return [self.value(shape.member, mode, depth + 1) for _ in range(min(n, 1000))]
        if kind == "map":
            n = rng.choice([0, 1, 2, 60]) if mode == "nesting" else rng.choice([0, 1, 2])
            return {self.string(shape.key, mode) or f"k{i}": self.value(shape.value, mode, depth + 1) for i in range(n)}
        if kind == "string":
            return self.string(shape, mode)
        if kind in ("integer", "long"):
            return self.number(shape, mode)
        if kind in ("float", "double"):
            if mode == "valid":
                return rng.choice([0.25, 1.0, 2.0])
            return rng.choice([0.0, 0.25, -1.5, 1e-9, 1e300, 999.99995])
        if kind == "boolean":
            return rng.choice([True, False]) if mode != "bounds" else rng.choice([True, False, 0, 1, "true"])
        if kind == "timestamp":
            return rng.choice([0, 1_700_000_000, -1, "2024-01-01T00:00:00Z", 10**15])
        if kind == "blob":
            return rng.choice(["", "AAAA", "not base64!"])
        return rng.choice(ODD_STRINGS)

    def length(self, shape: Any, mode: str, cap: int) -> int:
        meta = shape.metadata
        lo, hi = meta.get("min", 0), meta.get("max", cap)
        if mode == "bounds":
            return max(0, self.rng.choice([lo - 1, lo, min(hi, 10_000), min(hi + 1, 10_001)]))
        return self.rng.randint(lo, max(lo, min(hi, cap)))

    def string(self, shape: Any, mode: str) -> str:
        rng = self.rng
        enum = list(shape.enum or [])
        if mode == "valid":
            if enum:
                return rng.choice(enum)
            pool = NAMES + ["fz-" + str(rng.randint(0, 99)), "echo", "hello world", "1", "512"]
            return rng.choice(pool)
        if mode == "bounds":
            meta = shape.metadata
            choices = HUGE[:3] + [HUGE[3]] * (rng.random() < 0.05)
            if "max" in meta:
                choices += ["m" * meta["max"], "m" * (meta["max"] + 1)]
            if "min" in meta:
                choices += ["n" * max(0, meta["min"] - 1)]
            return rng.choice(choices)
        if mode == "unicode":
            return "".join(rng.choice(ODD_STRINGS[9:22]) for _ in range(rng.randint(1, 8)))
        return rng.choice(ODD_STRINGS + enum)

    def number(self, shape: Any, mode: str) -> Any:
        meta = shape.metadata
        rng = self.rng
        if mode == "valid":
            lo, hi = meta.get("min", 0), meta.get("max", 16)
            return rng.randint(lo, max(lo, min(hi, lo + 16)))
        if mode == "bounds":
            edges = [meta[k] + d for k in ("min", "max") if k in meta for d in (-1, 0, 1)]
            return rng.choice(edges + INTS + [1.5, -0.0, 1e308])
        return rng.choice(INTS)

    def wrong_type(self, kind: str) -> Any:
        options: list[Any] = [None, True, 0, -1.5, "s", [], [None], {}, {"a": {"b": []}}]
        wrong = {"structure": (dict,), "list": (list,), "map": (dict,), "string": (str,),
                 "integer": (int,), "long": (int,), "boolean": (bool,)}.get(kind, ())
        return self.rng.choice([o for o in options if not isinstance(o, wrong) or o is None])

    def deep(self, depth: int) -> Any:
        value: Any = self.rng.choice([1, "x", None])
        for _ in range(depth):
            value = [value] if self.rng.random() < 0.5 else {"a": value}
        return value

    # -- requests ---------------------------------------------------------------------

    def operation_requests(self, per_operation: int) -> Iterator[Request]:
        for name in MODEL.operation_names:
            op = MODEL.operation_model(name)
            method, uri = op.http["method"], op.http["requestUri"].split("?")[0]
            for i in range(per_operation):
                mode = MODES[i % len(MODES)]
                path = uri
                if "{resourceArn}" in uri:
                    arn = self.rng.choice(["garbage", "arn:aws:batch:::", self.rng.choice(ODD_STRINGS),
                                           "arn:aws:batch:us-east-1:123456789012:job-queue/fz-q"])
                    path = uri.replace("{resourceArn}", quote(arn, safe="", errors="surrogatepass") or "x")
                body = self.value(op.input_shape, mode) if op.input_shape is not None else {}
                if isinstance(body, dict) and op.input_shape is not None:
                    for member, shape in op.input_shape.members.items():  # where the URI takes it
                        if shape.serialization.get("location") in ("uri", "querystring"):
                            body.pop(member, None)
                yield method, path, {}, _dump(body), f"{name}/{mode}"

    def mutated_requests(self, per_operation: int) -> Iterator[Request]:
        """Each base, ``per_operation`` times, with one or two places changed."""
        n = 0
        for name, base in BASES:
            op = MODEL.operation_model(name)
            for i in range(per_operation):
                n += 1
                body = json.loads(json.dumps(base).replace("{n}", f"m{self.rng.randrange(10**9)}-{n}"))
                mode = MODES[1 + i % (len(MODES) - 1)]
                for _ in range(self.rng.choice([1, 1, 1, 2])):
                    self.mutate(body, op.input_shape, mode)
                yield op.http["method"], op.http["requestUri"], {}, _dump(body), f"{name}/mutate-{mode}"

    def leaf_requests(self) -> Iterator[Request]:
        """Each base with each of its values (and each member it leaves out) set in turn to
        each of a few extremes of its type: every place meets every extreme once, which
        random mutations would take very many requests to do."""
        n = 0
        for name, base in BASES:
            op = MODEL.operation_model(name)
            template = json.dumps(base)
            for path, shape in _places(base, op.input_shape):
                for value in EXTREMES.get(shape.type_name, []) + [self.value(shape, "valid", 3)]:
                    n += 1
                    body = json.loads(template.replace("{n}", f"x{n}"))
                    _put(body, path, value)
                    where = ".".join(map(str, path))
                    yield op.http["method"], op.http["requestUri"], {}, _dump(body), f"{name}/extreme {where}"

    def extension_requests(self) -> Iterator[Request]:
        """batchplane's own operations (/v1/batchplane/*: triggers and schedules, which
        botocore's model does not have): each field of a request the stack accepts set in
        turn to each extreme of a string and to the wrong types; the job fields they share
        with SubmitJob (containerOverrides, parameters) place by place, as leaf_requests."""
        submit = MODEL.operation_model("SubmitJob").input_shape.members
        wrong = [5, None, [], {}, True, 10**309]
        n = 0
        for operation, base in EXTENSION_BASES:
            for field in [*base, *EXTENSION_FIELDS.get(operation, ())]:
                values: list[Any] = [*EXTREMES["string"], *wrong, *EXTENSION_VALUES.get(field, ())]
                if field in submit and submit[field].type_name != "string":
                    values = list(wrong)
                    for path, shape in _places(BASES[0][1].get(field, {}), submit[field]):
                        for value in EXTREMES.get(shape.type_name, []):
                            nested = json.loads(json.dumps(BASES[0][1].get(field, {})))
                            _put(nested, path, value)
                            values.append(nested)
                for value in values:
                    n += 1
                    body = json.loads(json.dumps(base).replace("{n}", f"e{n}"))
                    body[field] = value
                    yield "POST", f"/v1/batchplane/{operation}", {}, _dump(body), f"{operation}/extreme {field}"

    def mutate(self, body: dict[str, Any], shape: Any, mode: str) -> None:
        """Change one place of ``body``: a member (present or not) of one of its
        structures, an element of one of its lists, or an entry of one of its maps."""
        # (container, key, shape of the value): places the base fills, and places it could.
        present: list[tuple[Any, Any, Any]] = []
        absent: list[tuple[Any, Any, Any]] = []

        def walk(value: Any, shape: Any) -> None:
            if shape.type_name == "structure" and isinstance(value, dict):
                for member, inner in shape.members.items():
                    (present if member in value else absent).append((value, member, inner))
                    if member in value:
                        walk(value[member], inner)
            elif shape.type_name == "list" and isinstance(value, list):
                absent.append((value, len(value), shape.member))
                for i, item in enumerate(value):
                    present.append((value, i, shape.member))
                    walk(item, shape.member)
            elif shape.type_name == "map" and isinstance(value, dict):
                absent.append((value, self.string(shape.key, mode) or "k", shape.value))
                for item in value.values():
                    walk(item, shape.value)

        walk(body, shape)
        rng = self.rng
        container, key, inner = rng.choice(present if present and (rng.random() < 0.75 or not absent) else absent)
        kind = inner.type_name
        if mode == "types":
            new = self.wrong_type(kind)
        elif kind == "string" and mode == "bounds" and rng.random() < 0.4:
            new = rng.choice(NUMERIC)
        elif kind in ("integer", "long") and mode == "bounds" and rng.random() < 0.4:
            new = rng.choice(INTS[-4:] + [-(10**309)])  # past 64 bits, and past float
        elif rng.random() < 0.3:  # a member the base leaves out, as it could well be
            new = self.value(inner, "valid", 3)
        else:
            new = self.value(inner, mode, 3)
        if isinstance(container, list) and key == len(container):
            container.append(new)
        else:
            container[key] = new

    def raw_requests(self) -> Iterator[Request]:
        paths = ["/v1/" + MODEL.operation_model(n).http["requestUri"].split("/")[-1] for n in MODEL.operation_names]
        paths = [p for p in paths if "{" not in p]
        bodies = [b"", b"{", b"[]", b"null", b'"s"', b"-1e999", b"NaN", b"\x00\x01\x02", b"\xff" * 64,
                  b"[" * 20_000 + b"]" * 20_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b'{"": ""}',
                  b'{"jobName": "a", "jobName": "b"}', b'{"jobName": "\\ud800"}', b"\xef\xbb\xbf{}",
                  b'{"x": 1e400}', b"{}" + b" " * 100_000, b"{}garbage"]
        for path in paths:
            for body in bodies:
                yield "POST", path, {}, body, "raw/body"
        big = [b'{"jobName": "' + b"a" * (1 << 20) + b'"}', b"{" + b'"k": 1,' * 200_000 + b'"k": 1}',
               b'{"jobName": "' + b"\\u00e9" * 300_000 + b'"}', b"[" + b"1," * 700_000 + b"1]"]
        for path in ("/v1/submitjob", "/v1/registerjobdefinition", "/v1/createcomputeenvironment", "/v1/describejobs"):
            for body in big:
                yield "POST", path, {}, body, "raw/big"
        for method in ("GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
            for path in ("/v1/submitjob", "/v1/describejobs", "/v1/tags/x"):
                yield method, path, {}, b"{}", "raw/method"
        odd_paths = ["/", "/v1", "/v1/", "/v2/submitjob", "/v1/SUBMITJOB", "/v1/submitjob/", "/v1/submitjob?x=1",
                     "/v1/unknownoperation", "/v1/tags", "/v1/tags/", "/v1/" + "a" * 5000, "/v1/%00", "/v1/..%2f..",
                     "/v1//submitjob", "/v1/submitjob;x", "/v1/tags/" + quote("arn:aws:batch:" + "x" * 3000, safe="")]
        for path in odd_paths:
            yield "POST", path, {}, b"{}", "raw/path"
        header_cases = [{"Content-Type": "text/plain"}, {"Content-Type": ""}, {"Content-Encoding": "gzip"},
                        {"X-Amz-Target": "AWSBatch.SubmitJob"}, {"Authorization": "AWS4-HMAC-SHA256 garbage"},
                        {"Authorization": "AWS4-HMAC-SHA256 Credential=a/20240101/us-east-1/batch/aws4_request"},
                        {"amz-sdk-invocation-id": "x" * 10_000}, {"Accept": "application/xml"}]
        for headers in header_cases:
            for path in ("/v1/submitjob", "/v1/describejobs"):
                yield "POST", path, headers, b'{"jobs": []}', "raw/headers"


# batchplane's own operations (api/extensions.py), and the fields their bases leave out.
JOB_TARGET = {"jobQueue": "fz-q", "jobDefinition": "fz-def"}
EXTENSION_BASES: list[tuple[str, dict[str, Any]]] = [
    ("createschedule", {"scheduleName": "fz-{n}", "scheduleExpression": "rate(5 minutes)", "state": "DISABLED",
                        "scheduleExpressionTimezone": "Europe/Paris", "overlapPolicy": "SKIP", **JOB_TARGET}),
    ("createtrigger", {"triggerName": "fz-{n}", "bucket": "fz-bucket", "prefix": "in/", "suffix": ".csv",
                       "state": "DISABLED", **JOB_TARGET}),
    ("describeschedules", {"maxResults": 10}),
    ("describetriggers", {"maxResults": 10}),
    ("updateschedule", {"scheduleName": "fz-nope", "state": "DISABLED"}),
    ("deletetrigger", {"triggerName": "fz-nope"}),
]
EXTENSION_FIELDS = {"createschedule": ("jobName", "parameters", "containerOverrides", "shareIdentifier"),
                    "createtrigger": ("jobName", "parameters", "containerOverrides", "shareIdentifier"),
                    "describeschedules": ("nextToken", "scheduleNames"),
                    "describetriggers": ("nextToken", "triggerNames", "bucket")}
EXTENSION_VALUES = {
    "scheduleExpression": ["rate(" + "9" * 400 + " minutes)", "rate(" + "9" * 5000 + " days)", "rate(0 minutes)",
                           "rate(1 minutes)", "cron(0 0 1-" + "9" * 400 + " * ? *)", "cron(0 0 29 2 ? 2100)",
                           "cron(0/0 * * * ? *)", "cron(0 0 ? * 9#9 *)", "at(2030-01-01T00:00:00)"],
    "scheduleExpressionTimezone": ["a" * 5000, "../../etc/passwd", "/etc/localtime", "posixrules", "UTC\u0000"],
}

# Per type, values at and past what code computes with (see leaf_requests).
EXTREMES: dict[str, list[Any]] = {
    "integer": [10**309, -(10**309), 2**63, 2**31, -1, 0],
    "long": [10**309, 2**63, -1, 0],
    "string": ["9" * 400, "", "\u0000", "\ud800", "x" * 70_000, "-1", "0.0", " 1"],
    "double": [1e308, -1.0, 0.0, 5e-324],
    "float": [1e308, -1.0, 0.0],
    "boolean": ["true", 1],
    "list": [[], [None]],
    "map": [{}, {"": ""}],
    "structure": [{}],
}


def _places(value: Any, shape: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every place of ``value`` (by path) with its shape: its members, elements and
    entries, and the members its structures leave out."""
    if path:
        yield path, shape
    if shape.type_name == "structure" and isinstance(value, dict):
        for member, inner in shape.members.items():
            if member in value:
                yield from _places(value[member], inner, (*path, member))
            else:
                yield (*path, member), inner
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _places(item, shape.member, (*path, i))
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, shape.value, (*path, key))


def _put(body: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        body = body[key]
    body[path[-1]] = value


def _dump(body: Any) -> bytes:
    # Lone surrogates go as JSON escapes (they cannot be UTF-8); huge ints as written.
    return json.dumps(body, ensure_ascii=True).encode()
