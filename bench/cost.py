"""The cost meter's report: what one job asks of AWS, priced with bench/prices.json.

A workload's calls are attributed to the Lambda invocation that made them (see
harness.scope_of). What belongs to a job: its SubmitJob, and everything the stream-,
EventBridge- and Step Functions-triggered functions do for it. What does not: the
client's DescribeJobs/ListJobs polling (priced per call instead) and the periodic ticks
(a fixed cost per month, whatever the number of jobs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchplane import metering

from .harness import RETRY_JOB, function_memory_mb, schedules
from .jobs import Capture, Workload, sequential
from .report import NOT_MEASURED

if TYPE_CHECKING:
    from .harness import Harness
    from .report import Report

PRICES = Path(__file__).with_name("prices.json")
NEEDS = {"isolated": "needs the dispatch or cost section", "burst": "needs the throughput or cost section",
         "retry": "needs the cost section", "array": "needs the arrays section (--only arrays,cost)",
         "dependency": "needs the dependencies section (--only dependencies,cost)"}
TARGET_PER_MILLION = 5.0


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    for name, price in doc["prices"].items():
        missing = {"usd", "source", "as_of"} - price.keys()
        if missing:
            raise ValueError(f"{path}: price {name} lacks {sorted(missing)}")
    return doc


def belongs_to_job(scope: str) -> bool:
    """Calls made on behalf of jobs (not polling, not the periodic ticks)."""
    if scope.startswith("ApiFunction:"):
        return scope == "ApiFunction:submitjob"
    return not scope.endswith(":tick")


@dataclass
class PerJob:
    """One workload's demand divided by its number of jobs."""

    jobs: int
    aws_calls: float = 0.0
    http_requests: float = 0.0
    dynamodb_calls: float = 0.0
    read_units: float = 0.0
    write_units: float = 0.0
    reported_units: float = 0.0
    invocations: dict[str, float] = field(default_factory=dict)  # function -> per job
    gb_seconds: float = 0.0  # measured: handler wall time x MemorySize, billed per ms
    modelled_gb_seconds: float = 0.0  # CPU time scaled to Lambda's CPU share + AWS latency
    api_requests: float = 0.0
    eventbridge_entries: float = 0.0
    sfn_transitions: float = 0.0
    sfn_executions: float = 0.0
    operations: dict[str, float] = field(default_factory=dict)  # "service:Operation" -> per job
    units: dict[str, dict[str, float]] = field(default_factory=dict)  # op -> WRU/RRU per job
    scopes: dict[str, float] = field(default_factory=dict)  # handler scope -> AWS calls per job
    dollars: dict[str, float] = field(default_factory=dict)  # per job, by price line
    modelled_duration_dollars: float = 0.0  # not in ``dollars``: see per_million_modelled

    @property
    def lambda_invocations(self) -> float:
        return sum(self.invocations.values())

    @property
    def per_million(self) -> float:
        return sum(self.dollars.values()) * 1e6

    @property
    def per_million_modelled(self) -> float:
        """The total with the modelled Lambda duration instead of the measured one."""
        return self.per_million + (self.modelled_duration_dollars
                                   - self.dollars.get("Lambda duration", 0.0)) * 1e6


def per_job(usage: metering.Usage, invocations: dict[str, Any], jobs: int, prices: dict[str, Any],
            keep: Any = belongs_to_job) -> PerJob:
    memory = function_memory_mb()
    assume = {k: v["value"] for k, v in prices["assumptions"].items()}
    n = max(jobs, 1)
    out = PerJob(jobs=jobs)
    calls_by_scope: dict[str, int] = {}
    for (scope, service, operation), c in usage.counts.items():
        if not keep(scope):
            continue
        calls_by_scope[scope] = calls_by_scope.get(scope, 0) + c.calls
        out.aws_calls += c.calls / n
        out.http_requests += c.requests / n
        key = f"{service}:{operation}"
        out.operations[key] = out.operations.get(key, 0.0) + c.calls / n
        out.scopes[scope] = out.scopes.get(scope, 0.0) + c.calls / n
        if c.write_units or c.read_units:
            u = out.units.setdefault(key, {"write": 0.0, "read": 0.0})
            u["write"] += c.write_units / n
            u["read"] += c.read_units / n
        if service == "dynamodb":
            out.dynamodb_calls += c.calls / n
            out.read_units += c.read_units / n
            out.write_units += c.write_units / n
            out.reported_units += c.reported_units / n
        if service == "events" and operation == "PutEvents":
            out.eventbridge_entries += c.entries / n
        if service == "stepfunctions" and operation in ("StartExecution", "StartSyncExecution"):
            out.sfn_executions += c.calls / n
    for scope, inv in invocations.items():
        if not keep(scope):
            continue
        function = scope.split(":", 1)[0]
        gb = memory.get(function, 128) / 1024
        out.invocations[function] = out.invocations.get(function, 0.0) + inv.count / n
        out.gb_seconds += inv.billed_ms / 1000 * gb / n
        stretch = max(1.0, assume["lambda_full_vcpu_memory_mb"] / memory.get(function, 128))
        modelled = (inv.cpu_seconds * stretch
                    + calls_by_scope.get(scope, 0) * assume["aws_call_latency_ms"] / 1000)
        out.modelled_gb_seconds += modelled * gb / n
        if function == "ApiFunction":
            out.api_requests += inv.count / n
    return out


def price(p: PerJob, prices: dict[str, Any], *, stored_bytes: int = 0) -> PerJob:
    """Fill ``p.dollars`` (per job) line by line."""
    usd = {k: v["usd"] for k, v in prices["prices"].items()}
    assume = {k: v["value"] for k, v in prices["assumptions"].items()}
    async_invocations = p.lambda_invocations - p.api_requests
    traces = p.api_requests + async_invocations  # one per API request, one per async invoke
    months = assume["job_retention_days"] / assume["days_per_month"]
    item_gb = (stored_bytes + assume["dynamodb_item_overhead_bytes"]) / 1e9 if stored_bytes else 0.0
    p.dollars = {
        "DynamoDB requests": p.read_units * usd["dynamodb_read_request_unit"]
        + p.write_units * usd["dynamodb_write_request_unit"],
        # The job item, and its copy in gsi1 (projection ALL), for the retention period.
        "DynamoDB storage": item_gb * months * (2 * usd["dynamodb_storage_gb_month"]
                                                + usd["dynamodb_pitr_gb_month"]),
        "Lambda requests": p.lambda_invocations * usd["lambda_request"],
        "Lambda duration": p.gb_seconds * usd["lambda_gb_second_arm64"],
        "API Gateway": p.api_requests * usd["api_gateway_rest_request"],
        "EventBridge": p.eventbridge_entries * usd["eventbridge_custom_event"],
        "Step Functions": p.sfn_transitions * usd["step_functions_standard_transition"],
        "CloudWatch Logs": p.lambda_invocations * assume["lambda_log_bytes_per_invocation"] / 1e9
        * usd["cloudwatch_logs_ingestion_gb"],
        "X-Ray": traces * assume["xray_sampled_fraction"] * usd["xray_trace_recorded"],
    }
    p.modelled_duration_dollars = p.modelled_gb_seconds * usd["lambda_gb_second_arm64"]
    return p


def retry(h: Harness, n: int, deadline: float = float("inf")) -> Workload:
    workload, samples = sequential(h, RETRY_JOB, n, name="retry", deadline=deadline)
    workload.extra["attempts"] = [len(s["doc"].get("attempts", [])) for s in samples]
    workload.extra["statuses"] = [s["doc"].get("status") for s in samples]
    return workload


def idle_tick(h: Harness) -> Workload:
    """One tick of every periodic function on an idle service, with the sample event of
    events/scheduler/tick.json (a Scheduled Event)."""
    sample = Path(h.stack.template_path).parent / "events" / "scheduler" / "tick.json"
    event = json.loads(sample.read_text())
    h.settle()
    periods = schedules()
    with Capture(h) as cap:
        for function in periods:
            h.stack.router.functions[function].invoke(event)
    return Workload("tick", 1, cap.usage, cap.invocations, cap.seconds, 1,
                    extra={"periods": periods})


def job_item_bytes(h: Harness, job_id: str) -> int:
    """Size of one finished job's item, read straight from the emulator (not metered)."""
    out = h.stack.router.clients["dynamodb"].get_item(
        TableName=h.table_name, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}})
    return metering.item_size(out.get("Item"))


LINES = ("DynamoDB requests", "DynamoDB storage", "Lambda requests", "Lambda duration",
         "API Gateway", "EventBridge", "Step Functions", "CloudWatch Logs", "X-Ray")


def minus(a: PerJob, b: PerJob, times: float) -> PerJob:
    """``a - times * b``, field by field: what a dependency edge adds to a pair of jobs."""
    out = PerJob(jobs=a.jobs)
    for name in ("aws_calls", "http_requests", "dynamodb_calls", "read_units", "write_units",
                 "reported_units", "gb_seconds", "modelled_gb_seconds", "api_requests",
                 "eventbridge_entries", "sfn_transitions", "sfn_executions"):
        setattr(out, name, getattr(a, name) - times * getattr(b, name))
    for name in ("invocations", "operations"):
        x, y = getattr(a, name), getattr(b, name)
        setattr(out, name, {k: x.get(k, 0.0) - times * y.get(k, 0.0) for k in x.keys() | y.keys()})
    return out


LABELS = {"isolated": "simple job, one at a time", "burst": "simple job, in a burst",
          "retry": "retry (attempt 1 exits 1)", "array": "array child",
          "dependency": "dependency edge"}


def run(h: Harness, report: Report, workloads: dict[str, Workload], *, tick: Workload,
        polls: Workload | None, sample_job: str | None) -> None:
    prices = load_prices()
    stored = job_item_bytes(h, sample_job) if sample_job else 0
    columns: dict[str, PerJob | None] = {}
    incomplete = {k: w for k, w in workloads.items() if w.finished < w.jobs}
    for key in ("isolated", "burst", "retry", "array"):
        w = workloads.get(key)
        # Jobs still running when the capture ended have not cost everything yet.
        p = per_job(w.usage, w.invocations, w.jobs, prices) if w and key not in incomplete \
            else None
        if p is not None and key == "array":
            p.sfn_transitions = w.extra.get("sfn_transitions", 0) / max(w.jobs, 1)  # type: ignore[union-attr]
        columns[key] = price(p, prices, stored_bytes=stored) if p else None
    linked, control = workloads.get("dependency"), workloads.get("pair")
    complete = not {"dependency", "pair"} & incomplete.keys()
    if linked is not None and control is not None and complete:
        edge = minus(per_job(linked.usage, linked.invocations, linked.jobs, prices),
                     per_job(control.usage, control.invocations, control.jobs, prices), 1)
        columns["dependency"] = price(edge, prices)  # storage: the jobs already count theirs
    else:
        columns["dependency"] = None

    month = 86400 * prices["assumptions"]["days_per_month"]["value"]
    per_month = 0.0
    tick_calls = 0.0
    for function, period in tick.extra["periods"].items():
        one = price(per_job(tick.usage, tick.invocations, 1, prices,
                            keep=lambda s, f=function: s == f"{f}:tick"), prices)
        per_month += one.per_million / 1e6 * month / period
        tick_calls += one.aws_calls

    poll_cost = None
    if polls is not None:
        describe = "ApiFunction:describejobs"
        calls = sum(i.count for s, i in polls.invocations.items() if s == describe)
        if calls:
            poll_cost = price(per_job(polls.usage, polls.invocations, calls, prices,
                                      keep=lambda s: s == describe), prices)

    for key, p in columns.items():
        label = LABELS[key]
        if p is None and key in incomplete:
            w = incomplete[key]
            report.add("Cost meter", f"$ per million: {label}", NOT_MEASURED,
                       note=f"only {w.finished} of {w.jobs} ended within the time budget")
            continue
        if p is None:
            report.add("Cost meter", f"$ per million: {label}", NOT_MEASURED, note=NEEDS[key])
            continue
        w = workloads[key]
        simple = key in ("isolated", "burst")
        per = {"array": "child", "dependency": "edge"}.get(key, "job")
        note = (f"{p.aws_calls:.1f} AWS calls/{per} ({p.dynamodb_calls:.1f} DynamoDB, "
                f"{p.write_units:.1f} WRU + {p.read_units:.1f} RRU est.), "
                f"{p.lambda_invocations:.1f} Lambda invocations/{per}; "
                f"${p.per_million_modelled:.2f} with modelled Lambda duration")
        if key == "dependency":
            note = (f"pairs A -> B minus pairs A, B without dependsOn ({w.jobs} each); "
                    + note)
        elif key == "array":
            note = f"array of {w.jobs}, per child, {p.sfn_transitions:.2f} transitions; " + note
        elif key == "retry":
            attempts = w.extra.get("attempts", [])
            statuses = w.extra.get("statuses", [])
            note += (f"; {w.jobs} jobs, attempts {attempts}, "
                     f"{statuses.count('SUCCEEDED')} SUCCEEDED")
        else:
            note += f"; {w.jobs} jobs"
        report.add("Cost meter", f"$ per million: {label}", round(p.per_million, 2), "$",
                   note=note, target=f"< ${TARGET_PER_MILLION:.0f}" if simple else None,
                   ok=p.per_million < TARGET_PER_MILLION if simple else None)
    report.add("Cost meter", "Step Functions transitions per simple job", 0,
               note="a simple job starts no state machine; arrays: see the array child row")
    ticking = ", ".join(f"{f} every {p:.0f} s" for f, p in tick.extra["periods"].items())
    report.add("Cost meter", "idle periodic ticks, per month", round(per_month, 2), "$",
               note=f"{ticking}: {tick_calls:.0f} AWS calls a round, whatever the number of "
                    "jobs")
    if poll_cost is not None:
        report.add("Cost meter", "each DescribeJobs poll, per million calls",
                   round(poll_cost.per_million, 2), "$",
                   note="what a client's status polling adds (API Gateway + Lambda + reads)")

    report.data["cost"] = {
        "prices_file": str(PRICES.relative_to(PRICES.parents[1])),
        "stored_job_item_bytes": stored,
        "per_job": {k: _json(p) if p else NOT_MEASURED for k, p in columns.items()},
        "step_functions_simple_job": 0,
        "idle_ticks": {"periods_seconds": tick.extra["periods"], "dollars_per_month": per_month,
                       "aws_calls_per_round": tick_calls},
        "describejobs_poll": _json(poll_cost) if poll_cost else None,
    }
    _tables(report, columns)


def _json(p: PerJob) -> dict[str, Any]:
    return {
        "jobs": p.jobs, "aws_calls": p.aws_calls, "http_requests": p.http_requests,
        "dynamodb_calls": p.dynamodb_calls, "read_units_estimated": p.read_units,
        "write_units_estimated": p.write_units, "capacity_units_reported_by_moto": p.reported_units,
        "lambda_invocations": p.invocations, "lambda_gb_seconds": p.gb_seconds,
        "lambda_gb_seconds_modelled": p.modelled_gb_seconds,
        "dollars_per_million_jobs_modelled_duration": p.per_million_modelled,
        "api_gateway_requests": p.api_requests, "eventbridge_entries": p.eventbridge_entries,
        "step_functions_transitions": p.sfn_transitions, "operations": p.operations,
        "request_units_by_operation": p.units, "aws_calls_by_handler": p.scopes,
        "dollars_per_job": p.dollars, "dollars_per_million_jobs": p.per_million,
    }


def _tables(report: Report, columns: dict[str, PerJob | None]) -> None:
    names = {"isolated": "simple, one at a time", "burst": "simple, burst", "retry": "retry",
             "array": "array child", "dependency": "dependency edge"}
    keys = list(names)
    functions = sorted({fn for p in columns.values() if p for fn in p.invocations})

    def row(label: str, get: Any) -> list[Any]:
        return [label, *[get(columns[k]) if columns.get(k) else NOT_MEASURED
                         for k in keys]]

    rows: list[Any] = [
        row("AWS requests (control plane)", lambda p: p.aws_calls),
        row("  DynamoDB calls", lambda p: p.dynamodb_calls),
        row("  DynamoDB write units (estimated)", lambda p: p.write_units),
        row("  DynamoDB read units (estimated)", lambda p: p.read_units),
        row("  DynamoDB capacity reported by moto", lambda p: p.reported_units),
        row("Lambda invocations", lambda p: p.lambda_invocations),
        *[row(f"  {fn}", lambda p, fn=fn: p.invocations.get(fn, 0.0)) for fn in functions],
        row("Lambda GB-s (measured wall time x MemorySize)", lambda p: p.gb_seconds),
        row("Lambda GB-s (modelled, see docs)", lambda p: p.modelled_gb_seconds),
        row("API Gateway requests", lambda p: p.api_requests),
        row("EventBridge PutEvents entries", lambda p: p.eventbridge_entries),
        row("Step Functions transitions", lambda p: p.sfn_transitions),
        None,
        *[row(f"$/M: {line}", lambda p, line=line: p.dollars[line] * 1e6) for line in LINES],
        row("$/M: total", lambda p: p.per_million),
        row("$/M: total, modelled Lambda duration", lambda p: p.per_million_modelled),
    ]
    title = "Cost meter: per job (per child, per edge) and $ per million (bench/prices.json)"
    report.tables[title] = {"columns": ["", *[names[k] for k in keys]], "rows": rows}
    present = [k for k in keys if columns.get(k)]
    ops = sorted({op for k in present for op in columns[k].operations})  # type: ignore[union-attr]
    report.tables["AWS calls per job, by service:operation"] = {
        "columns": ["service:operation", *[names[k] for k in present]],
        "rows": [[op, *[columns[k].operations.get(op, 0.0) for k in present]]  # type: ignore[union-attr]
                 for op in ops],
    }
