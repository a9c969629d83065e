"""The ``batchplane`` command."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from .cli_extensions import add_parsers


def _up(args: argparse.Namespace) -> int:
    from .local.stack import LocalStack

    stack = LocalStack(port=args.port).start()
    print(f"batchplane local stack listening on {stack.endpoint}", flush=True)
    print(f"  export AWS_ENDPOINT_URL={stack.endpoint} AWS_DEFAULT_REGION=us-east-1 "
          "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local", flush=True)
    print("  Ctrl-C to stop.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    stack.stop()
    return 0


def _interrupt(args: argparse.Namespace) -> int:
    """Ask a running local stack to reclaim the Spot instance under a job."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{args.endpoint.rstrip('/')}/_batchplane/interrupt", method="POST",
        data=json.dumps({"jobId": args.job_id}).encode(), headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            print(f"interrupted instance {json.load(resp)['instanceId']} running job {args.job_id}")
            return 0
    except urllib.error.HTTPError as e:
        print(f"error: {json.load(e).get('message')}", file=sys.stderr)
        return 1


def _demo(args: argparse.Namespace) -> int:
    from .local.demo import run

    return run(endpoint=args.endpoint, jobs=args.jobs, samples=args.samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchplane", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    local = sub.add_parser("local", help="run the service on this machine")
    local_sub = local.add_subparsers(dest="local_command", required=True)
    up = local_sub.add_parser("up", help="start the local stack in the foreground")
    up.add_argument("--port", type=int, default=4566, help="port of the API (default 4566)")
    up.set_defaults(func=_up)
    interrupt = local_sub.add_parser(
        "interrupt", help="send a Spot interruption for the instance running JOB_ID"
    )
    interrupt.add_argument("job_id", metavar="JOB_ID")
    interrupt.add_argument("--endpoint", default="http://127.0.0.1:4566", help="the local stack")
    interrupt.set_defaults(func=_interrupt)
    demo = sub.add_parser("demo", help="run the sample workload to completion and print results")
    demo.add_argument("--endpoint", help="use a running stack instead of starting one")
    demo.add_argument("--jobs", type=int, default=8, help="number of worker jobs (default 8)")
    demo.add_argument("--samples", type=int, default=100_000, help="samples per worker")
    demo.set_defaults(func=_demo)
    add_parsers(sub)  # batchplane triggers ... / batchplane schedules ...
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
