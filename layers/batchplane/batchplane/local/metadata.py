"""The ECS task metadata endpoint of local attempts (versions 3 and 4), as the ECS agent
serves it to every container: ``$ECS_CONTAINER_METADATA_URI_V4`` answers the container's
metadata, ``/task`` the task's (its ARN, cluster, family, limits, containers). Programs
and libraries that find out where they run from it (Metaflow, logging agents, the AWS
SDKs' region and container lookups) work unchanged in local mode.

The launcher owns what each task is; this module only serves it, on a loopback port of
its own (the port the attempts are given, kept across a restart of the stack so that
adopted attempts still reach it). Stats (``/stats``, ``/task/stats``) need Docker's
cgroup counters, which local processes do not have: they answer 404 with a message.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

# Beside the launcher's state directory (which holds only task directories): the port to
# bind again.
PORT_FILE = "task-metadata-port"

# What the launcher answers for a task id: the task's metadata (with its "Containers"),
# or None when it knows no such task.
Lookup = Callable[[str], dict[str, Any] | None]


class MetadataEndpoint:
    def __init__(self, lookup: Lookup, state_dir: Path | None = None) -> None:
        self.lookup = lookup
        self.state_dir = state_dir
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def base_url(self) -> str:
        """http://127.0.0.1:PORT, the server started on first use."""
        with self._lock:
            if self._server is None:
                self._server = self._bind()
                threading.Thread(target=self._server.serve_forever, name="task-metadata", daemon=True).start()
            return f"http://127.0.0.1:{self._server.server_address[1]}"

    def environment(self, task_id: str) -> dict[str, str]:
        """The variables ECS sets in a container for its metadata endpoint."""
        base = self.base_url()
        return {"ECS_CONTAINER_METADATA_URI": f"{base}/v3/{task_id}",
                "ECS_CONTAINER_METADATA_URI_V4": f"{base}/v4/{task_id}"}

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    def _bind(self) -> ThreadingHTTPServer:
        handler = _handler(self.lookup)
        saved = self.state_dir.parent / PORT_FILE if self.state_dir else None
        port = 0
        if saved and saved.exists():
            with contextlib.suppress(ValueError):
                port = int(saved.read_text())
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or port == 0:
                raise
            # Taken meanwhile: attempts adopted from the last run lose their endpoint.
            log.warning("the task metadata port %d is taken; serving on another", port)
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        if saved:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(str(server.server_address[1]))
        return server


def _handler(lookup: Lookup) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = self.path.split("?", 1)[0].strip("/").split("/")
            if len(parts) < 2 or parts[0] not in ("v3", "v4"):  # noqa: PLR2004 - a path is at least /<version>/<task id>
                return self._answer(404, {"error": f"no such metadata path: {self.path}"})
            task = lookup(parts[1])
            if task is None:
                return self._answer(404, {"error": f"no task {parts[1]} on this instance"})
            rest = parts[2:]
            if rest == []:
                return self._answer(200, task["Containers"][0])
            if rest == ["task"]:
                return self._answer(200, task)
            if rest in (["stats"], ["task", "stats"]):
                return self._answer(404, {"error": "local mode has no container statistics: "
                                                   "attempts are processes, not Docker containers"})
            return self._answer(404, {"error": f"no such metadata path: {self.path}"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            log.debug("task metadata: " + format, *args)

    return Handler
