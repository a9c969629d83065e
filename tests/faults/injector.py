"""The seeded fault injector: the Nth AWS call of a handler invocation fails.

Every boto3 client the product makes (``batchplane.aws.client``: the DynamoDB store,
ECS, Step Functions, EventBridge, CloudWatch Logs) gets two botocore hooks:

- ``before-call``: the fault is raised before the request is sent (nothing happened);
- ``after-call``: the request went through and committed, then its answer is replaced
  by the error (what a lost response, a timeout or a 500 after the write looks like).

The errors are what botocore raises when its own retries give up: a throttle
(``ProvisionedThroughputExceededException`` for DynamoDB, ``ThrottlingException``
elsewhere), a 500 ``InternalFailure``, a connect timeout (before) or a read timeout
(after). Both hooks run outside botocore's retry loop, so the product's own code sees
the fault.

Calls are counted per handler invocation (a context variable set by the world around
``Function.invoke``; the scheduler's launch threads copy it). Calls made outside an
invocation (the harness reading the table, playing the ECS agent) are never faulted.
Each invocation draws its plan from ``Random((seed, function, n))``: whether it gets a
fault, at which call, of which kind; so a seed replays exactly.
"""

from __future__ import annotations

import contextvars
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

KINDS = (
    "before:throttle", "before:500", "before:timeout",
    "after:throttle", "after:500", "after:timeout",
)


@dataclass
class Rule:
    """A targeted fault (for the regression tests of defects the harness found): the
    ``nth`` call of ``operation`` made by ``function`` fails with ``kind``, and the
    ``times - 1`` such calls after it."""

    function: str
    operation: str
    kind: str
    nth: int = 1
    times: int = 1
    seen: int = 0


@dataclass
class Invocation:
    function: str
    number: int
    fault_at: list[int]  # call numbers (from 1) that fail
    kinds: list[str]
    calls: int = 0


@dataclass
class Fired:
    function: str
    invocation: int
    call: int
    operation: str
    kind: str
    site: str  # the product function that made the call


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("fault_invocation", default=None)


@dataclass
class Injector:
    seed: int
    rate: float = 0.35  # share of invocations that get a fault
    max_call: int = 14  # the faulted call is drawn from 1..max_call
    enabled: bool = True
    fired: list[Fired] = field(default_factory=list)
    invocations: Counter[str] = field(default_factory=Counter)
    trace: list[str] = field(default_factory=list)  # every call, for replay checks
    rules: list[Rule] = field(default_factory=list)  # given: only these faults, no random ones

    # -- per invocation -------------------------------------------------------------

    def begin(self, function: str) -> contextvars.Token[Invocation | None]:
        self.invocations[function] += 1
        n = self.invocations[function]
        rng = random.Random(f"{self.seed}/{function}/{n}")
        fault_at: list[int] = []
        kinds: list[str] = []
        if self.enabled and not self.rules and rng.random() < self.rate:
            count = 2 if rng.random() < 0.2 else 1
            fault_at = sorted(rng.sample(range(1, self.max_call + 1), count))
            kinds = [rng.choice(KINDS) for _ in fault_at]
        return _current.set(Invocation(function, n, fault_at, kinds))

    @staticmethod
    def end(token: contextvars.Token[Invocation | None]) -> None:
        _current.reset(token)

    # -- botocore hooks -------------------------------------------------------------

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call", self._before)
        client.meta.events.register("after-call", self._after)

    def _due(self, model: Any, phase: str) -> str | None:
        inv = _current.get()
        if inv is None:
            return None
        if phase == "before":
            inv.calls += 1
            self.trace.append(f"{inv.function}#{inv.number}.{inv.calls}:{model.name}")
        if self.enabled and self.rules:
            for rule in self.rules:
                if rule.function == inv.function and rule.operation == model.name and rule.kind.startswith(phase):
                    rule.seen += 1
                    if rule.nth <= rule.seen < rule.nth + rule.times:
                        self.fired.append(Fired(inv.function, inv.number, inv.calls, model.name, rule.kind, _site()))
                        return rule.kind
            return None
        if inv.calls in inv.fault_at:
            kind = inv.kinds[inv.fault_at.index(inv.calls)]
            if kind.startswith(phase + ":"):
                self.fired.append(Fired(inv.function, inv.number, inv.calls, model.name, kind, _site()))
                self.trace.append(f"  fault {kind}")
                return kind
        return None

    def _before(self, model: Any, **_: Any) -> None:
        kind = self._due(model, "before")
        if kind:
            raise _error(kind, model)

    def _after(self, model: Any, **_: Any) -> None:
        kind = self._due(model, "after")
        if kind:
            raise _error(kind, model)

    # -- reporting ------------------------------------------------------------------

    def sites(self) -> Counter[str]:
        return Counter(f.site for f in self.fired)


def _error(kind: str, model: Any) -> Exception:
    phase, what = kind.split(":")
    service = model.service_model.service_name
    if what == "timeout":
        url = f"https://{service}.us-east-1.amazonaws.com/"
        return ConnectTimeoutError(endpoint_url=url) if phase == "before" else ReadTimeoutError(endpoint_url=url)
    if what == "throttle":
        code = "ProvisionedThroughputExceededException" if service == "dynamodb" else "ThrottlingException"
        status = 400
    else:
        code, status = "InternalFailure", 500
    return ClientError(
        {"Error": {"Code": code, "Message": f"injected {kind}"},
         "ResponseMetadata": {"HTTPStatusCode": status}},
        model.name,
    )


def _site() -> str:
    """The innermost product function (batchplane.service/adapters/store) on the stack
    above the call, as ``module.function``; the service layer if it has one."""
    frame = sys._getframe(3)
    first = ""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("batchplane.service."):
            return f"{module.removeprefix('batchplane.')}.{frame.f_code.co_name}"
        if not first and module.startswith("batchplane.") and not module.startswith("batchplane.aws"):
            first = f"{module.removeprefix('batchplane.')}.{frame.f_code.co_name}"
        frame = frame.f_back
    return first or "other"
