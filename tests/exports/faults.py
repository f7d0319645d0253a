"""An HTTP proxy in front of the S3 server that answers PutObject the way a failing S3 does.

Loopback only. Every request is forwarded to moto unchanged (the signature covers the
``Host`` header, which is kept), except a PutObject of an object while a fault is switched
on: then the proxy answers with S3's own error (status, XML body), holds the request
longer than the client waits, or forwards it and withholds the answer (the object lands,
its acknowledgement never arrives).
"""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# fault -> (HTTP status, S3 error code, message), as S3 sends them.
ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "wrong_region": (
        301,
        "PermanentRedirect",
        "The bucket you are attempting to access must be addressed using the specified "
        "endpoint. Please send all future requests to this endpoint.",
    ),
}
HOP_BY_HOP = {"connection", "expect", "keep-alive", "transfer-encoding", "content-length"}


class FaultProxy:
    """Switch ``fault`` to one of ``ERRORS``, ``"timeout"`` or ``"ack_lost"``; ``None`` heals."""

    def __init__(self, target: str, *, after: int = 0) -> None:
        host, port = target.rsplit("//", 1)[1].split(":")
        self.target = (host, int(port))
        self.fault: str | None = None
        # PutObject requests let through before the fault applies.
        self.after = after
        self.puts = 0
        self.faulted = 0
        self.in_flight = threading.Event()  # a held PutObject is waiting
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.proxy = self
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving; held requests are let go."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def forward(self, handler: "_Handler", body: bytes) -> tuple[int, list, bytes]:
        """Send the request to moto; its status, headers and body."""
        upstream = http.client.HTTPConnection(*self.target, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _is_put_object(self) -> bool:
        path = self.path.split("?", 1)[0]
        return self.command == "PUT" and path.strip("/").count("/") >= 1

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = None
        if self._is_put_object():
            proxy.puts += 1
            if proxy.fault and proxy.puts > proxy.after:
                fault = proxy.fault
                proxy.faulted += 1
        if fault in ERRORS:
            status, code, message = ERRORS[fault]
            xml = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><RequestId>FAULT</RequestId></Error>"
            ).encode()
            self._reply(status, [("Content-Type", "application/xml")], xml)
            return
        if fault == "timeout":
            proxy.in_flight.set()
            proxy.release.wait(30)
            self.close_connection = True
            return
        if (
            self.command == "HEAD"
            and proxy.fault == "wrong_region"
            and self.path.strip("/").count("/") == 0
        ):
            # S3 would name the bucket's region here; without it botocore cannot redirect.
            self._reply(403, [], b"")
            return
        status, headers, data = proxy.forward(self, body)
        if fault == "ack_lost":
            proxy.in_flight.set()
            proxy.release.wait(30)
            self.close_connection = True
            return
        self._reply(status, headers, data)

    def _reply(self, status: int, headers: list, data: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle
