"""moto's server, in this process, on loopback.

DynamoDB is linearizable per item: a conditional write either sees the latest version or
fails (see also moto_fixes for TransactWriteItems). moto's server handles requests on
many threads without a lock, so two conditional writes to one item could both pass
their check. The emulator therefore runs DynamoDB
requests one at a time, which is what makes local mode (and its race tests) honest about
"never dispatched twice".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import moto_fixes

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _SerializeDynamoDB:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


class _Handler(WSGIRequestHandler):
    # Headers and body are separate writes on a kept-alive connection; TCP_NODELAY stops
    # the second from waiting on the client's delayed ACK.
    disable_nagle_algorithm = True


class Emulator:
    def __init__(self) -> None:
        self.server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        moto_fixes.install()
        app = _SerializeDynamoDB(DomainDispatcherApplication(create_backend_app))
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
