"""A local HTTP file server for tests: Range requests, a request log, injected faults."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 at a free port, in a thread.

    ``requests`` logs (path, Range header) per GET; ``truncate[path] = k`` cuts the
    next k answers for ``path`` in half (the connection closes early);
    ``ignore_range`` holds paths answered in full even when a Range is asked.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[tuple[str, str | None]] = []
        self.truncate: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{path.lstrip('/')}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.lstrip("/")
            with server.lock:
                server.requests.append((path, self.headers.get("Range")))
                cut = server.truncate.get(path, 0) > 0
                if cut:
                    server.truncate[path] -= 1
            body = server.files.get(path)
            if body is None:
                self.send_error(404)
                return
            start = self._range_start(path)
            if start is not None and start >= len(body):
                self.send_error(416)
                return
            self.send_response(200 if start is None else 206)
            if start is not None:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start or 0:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if cut else body)
            self.close_connection = True

        def _range_start(self, path: str) -> int | None:
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            return int(match[1]) if match and path not in server.ignore_range else None

        def log_message(self, *args) -> None:
            pass

    return Handler
