"""Where the dashboard runs: inside ``local up`` (its front port, /dashboard/), or on its
own with ``batchplane dashboard`` for any batchplane endpoint, deployed ones included,
with the caller's AWS settings, as the job commands use them."""

from __future__ import annotations

import logging
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from ..endpoint import Clients, run_command
from .app import PREFIX, Dashboard

if TYPE_CHECKING:
    import argparse

log = logging.getLogger(__name__)


def for_endpoint(endpoint: str, region: str, access_key: str, secret_key: str) -> Dashboard:
    """A dashboard reading the Batch API and CloudWatch Logs at ``endpoint`` (a local
    stack's front port serves both), signing with the given key."""
    session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                    region_name=region)
    config = Config(retries={"mode": "standard"}, max_pool_connections=16)
    return Dashboard(session.client("batch", endpoint_url=endpoint, config=config),
                     session.client("logs", endpoint_url=endpoint, config=config))


def answer(handler: BaseHTTPRequestHandler, dashboard: Dashboard) -> None:
    """Answer one request of ``handler`` from the dashboard (a crash is a 500 page)."""
    try:
        status, headers, data = dashboard.handle(handler.command, handler.path, dict(handler.headers))
    except Exception:  # noqa: BLE001 - a bug in a page must not take the port down
        log.exception("dashboard page failed")
        status, headers, data = 500, {"Content-Type": "text/plain"}, b"The dashboard failed on this page; see the log."
    handler.send_response(status)
    for k, v in headers.items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


def serve(args: argparse.Namespace) -> int:
    """``batchplane dashboard``: the dashboard on 127.0.0.1:PORT for any endpoint."""
    def run(args: argparse.Namespace, aws: Clients) -> int:
        aws.batch.describe_job_queues(maxResults=1)  # a wrong endpoint or key fails here, in one line
        dashboard = Dashboard(aws.batch, aws.logs, prices_path=args.prices)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *a: Any) -> None:  # noqa: A002
                log.debug("dashboard: " + format, *a)

            def do_GET(self) -> None:  # noqa: N802
                if not self.path.startswith(PREFIX):
                    self.send_response(302)
                    self.send_header("Location", f"{PREFIX}/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer(self, dashboard)

            do_HEAD = do_GET  # noqa: N815

        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
        server.daemon_threads = True
        url = f"http://127.0.0.1:{server.server_address[1]}{PREFIX}/"
        print(f"batchplane dashboard for {aws.batch.meta.endpoint_url} at {url} (Ctrl-C to stop)", flush=True)
        if args.open:
            webbrowser.open(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0

    return run_command(run)(args)


def add_parser(sub: Any, connection: argparse.ArgumentParser) -> None:
    help = "serve the web dashboard for an endpoint (local up serves it at /dashboard/ already)"
    p = sub.add_parser("dashboard", help=help, description=help, parents=[connection])
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0: any free one)")
    p.add_argument("--prices", metavar="FILE", help="price table (default: $BATCHPLANE_PRICES, else the packaged one)")
    p.add_argument("--open", action="store_true", help="open it in a browser")
    p.set_defaults(func=serve)
