"""``batchplane triggers ...`` and ``batchplane schedules ...``: the extension operations
(api/extensions.py) from the command line. Output is the operation's JSON answer."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .client import BatchplaneClient, BatchplaneError


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not name=value")
    return name, value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url", help="the API's URL (default: AWS_ENDPOINT_URL_BATCH or AWS_ENDPOINT_URL)"
    )
    parser.add_argument(
        "--region", help="region to sign requests for (default: the AWS configuration's)"
    )


def _job_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--job-queue", required=required, help="job queue name or ARN")
    parser.add_argument(
        "--job-definition", required=required, help="job definition name, name:revision or ARN"
    )
    parser.add_argument(
        "--job-name", help="name of the submitted jobs (default: the trigger or schedule name)"
    )
    parser.add_argument(
        "--parameter",
        action="append",
        type=_parameter,
        default=[],
        metavar="NAME=VALUE",
        help="a job parameter (repeatable)",
    )
    parser.add_argument(
        "--container-overrides",
        type=_json_object,
        metavar="JSON",
        help="containerOverrides as in SubmitJob",
    )
    parser.add_argument("--share-identifier", help="share identifier, for fair-share job queues")


def _job_fields(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for field, value in (
        ("jobQueue", args.job_queue),
        ("jobDefinition", args.job_definition),
        ("jobName", args.job_name),
        ("containerOverrides", args.container_overrides),
        ("shareIdentifier", args.share_identifier),
    ):
        if value is not None:
            body[field] = value
    if args.parameter:
        body["parameters"] = dict(args.parameter)
    return body


def _run(args: argparse.Namespace) -> int:
    try:
        client = BatchplaneClient(args.endpoint_url, args.region)
        answer = client.call(args.operation, args.body(args))
    except (BatchplaneError, ValueError) as e:
        print(f"batchplane: {e}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2, sort_keys=True))
    return 0


def add_parsers(sub: Any) -> None:
    """Add the ``triggers`` and ``schedules`` commands to the ``batchplane`` parser."""
    triggers = sub.add_parser(
        "triggers", help="S3 triggers: one job per object created in a bucket"
    )
    t_sub = triggers.add_subparsers(dest="triggers_command", required=True)

    create = t_sub.add_parser("create", help="create a trigger")
    create.add_argument("name")
    create.add_argument(
        "--bucket", required=True, help="S3 bucket (with EventBridge notifications on)"
    )
    create.add_argument("--prefix", help="only keys starting with this")
    create.add_argument("--suffix", help="only keys ending with this")
    create.add_argument("--disabled", action="store_true", help="create it DISABLED")
    _job_options(create, required=True)
    create.set_defaults(
        operation="createtrigger",
        body=lambda a: {
            "triggerName": a.name,
            "bucket": a.bucket,
            **{k: v for k, v in (("prefix", a.prefix), ("suffix", a.suffix)) if v is not None},
            **({"state": "DISABLED"} if a.disabled else {}),
            **_job_fields(a),
        },
    )

    listing = t_sub.add_parser("list", help="describe triggers (all, by name, or of one bucket)")
    listing.add_argument("names", nargs="*")
    listing.add_argument("--bucket")
    listing.set_defaults(
        operation="describetriggers",
        body=lambda a: (
            {"triggerNames": a.names} if a.names else {"bucket": a.bucket} if a.bucket else {}
        ),
    )

    for verb, state in (("enable", "ENABLED"), ("disable", "DISABLED")):
        toggle = t_sub.add_parser(verb, help=f"{verb} a trigger")
        toggle.add_argument("name")
        toggle.set_defaults(
            operation="updatetrigger", body=lambda a, s=state: {"triggerName": a.name, "state": s}
        )

    delete = t_sub.add_parser("delete", help="delete a trigger")
    delete.add_argument("name")
    delete.set_defaults(operation="deletetrigger", body=lambda a: {"triggerName": a.name})

    schedules = sub.add_parser("schedules", help="schedules: a job per rate() or cron() firing")
    s_sub = schedules.add_subparsers(dest="schedules_command", required=True)

    def schedule_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
        parser.add_argument(
            "--expression",
            required=required,
            help="rate(5 minutes) or cron(0 12 * * ? *), as EventBridge Scheduler",
        )
        parser.add_argument("--timezone", help="IANA time zone of a cron expression (default UTC)")
        parser.add_argument(
            "--overlap",
            choices=("SKIP", "ALLOW"),
            help="SKIP (default): no new job while the previous one is active",
        )
        _job_options(parser, required=required)

    def schedule_fields(a: argparse.Namespace) -> dict[str, Any]:
        return {
            **{
                k: v
                for k, v in (
                    ("scheduleExpression", a.expression),
                    ("scheduleExpressionTimezone", a.timezone),
                    ("overlapPolicy", a.overlap),
                )
                if v is not None
            },
            **_job_fields(a),
        }

    create = s_sub.add_parser("create", help="create a schedule")
    create.add_argument("name")
    create.add_argument("--disabled", action="store_true", help="create it DISABLED")
    schedule_options(create, required=True)
    create.set_defaults(
        operation="createschedule",
        body=lambda a: {
            "scheduleName": a.name,
            **schedule_fields(a),
            **({"state": "DISABLED"} if a.disabled else {}),
        },
    )

    update = s_sub.add_parser("update", help="change a schedule")
    update.add_argument("name")
    schedule_options(update, required=False)
    update.set_defaults(
        operation="updateschedule", body=lambda a: {"scheduleName": a.name, **schedule_fields(a)}
    )

    listing = s_sub.add_parser("list", help="describe schedules (all or by name)")
    listing.add_argument("names", nargs="*")
    listing.set_defaults(
        operation="describeschedules", body=lambda a: {"scheduleNames": a.names} if a.names else {}
    )

    for verb, state in (("enable", "ENABLED"), ("disable", "DISABLED")):
        toggle = s_sub.add_parser(verb, help=f"{verb} a schedule")
        toggle.add_argument("name")
        toggle.set_defaults(
            operation="updateschedule", body=lambda a, s=state: {"scheduleName": a.name, "state": s}
        )

    delete = s_sub.add_parser("delete", help="delete a schedule")
    delete.add_argument("name")
    delete.set_defaults(operation="deleteschedule", body=lambda a: {"scheduleName": a.name})

    for parser in (*t_sub.choices.values(), *s_sub.choices.values()):
        _connection(parser)
        parser.set_defaults(func=_run)
