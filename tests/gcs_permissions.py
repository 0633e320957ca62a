"""An HTTP proxy in front of the GCS emulator that answers every request for some buckets as Cloud Storage answers
an account without read permission on them (403 with GCS's JSON error body), and passes the rest to the emulator:
the emulator itself enforces no permissions. The client library is unchanged; tests point STORAGE_EMULATOR_HOST at
the proxy.

    with PermissionDenied(server.url, denied={"their-data"}) as proxy:
        env = {"STORAGE_EMULATOR_HOST": proxy.url}
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import threading
from urllib.parse import unquote, urlsplit

ACCOUNT = "trainer@my-project.iam.gserviceaccount.com"
# The bucket in a JSON API path: /storage/v1/b/B/..., /download/storage/v1/b/B/..., /upload/storage/v1/b/B/...
BUCKET_IN_PATH = re.compile(r"^/(?:download/|upload/)?storage/v1/b/([^/?]+)")


class PermissionDenied:
    def __init__(self, upstream_url: str, denied: set[str]):
        self.upstream = urlsplit(upstream_url)
        self.denied = set(denied)
        self.refused: list[str] = []  # "METHOD path" of each request answered 403
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # the test's output shows what it asserts only
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                match = BUCKET_IN_PATH.match(urlsplit(self.path).path)
                if match and unquote(match.group(1)) in proxy.denied:
                    proxy.refused.append(f"{self.command} {self.path}")
                    return self._reply(403, _forbidden(unquote(match.group(1)), self.command, urlsplit(self.path).path),
                                       {})
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    headers = {key: value for key, value in self.headers.items() if key.lower() != "host"}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    kept = {key: value for key, value in answer.getheaders()
                            if key.lower() not in ("transfer-encoding", "content-length", "connection")}
                    self._reply(answer.status, data, kept)
                finally:
                    upstream.close()

            def _reply(self, status: int, data: bytes, headers: dict):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if status == 403:
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "PermissionDenied":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _forbidden(bucket: str, method: str, path: str) -> bytes:
    """Cloud Storage's answer to an account without the permission (the JSON API's error format)."""
    if method not in ("GET", "HEAD"):
        permission, resource = "storage.objects.create", "object"
    elif re.match(r"^/storage/v1/b/[^/]+/o/?$", path):  # a listing
        permission, resource = "storage.objects.list", f"bucket {bucket}"
    elif re.match(r"^/storage/v1/b/[^/]+/?$", path):
        permission, resource = "storage.buckets.get", f"bucket {bucket}"
    else:
        permission, resource = "storage.objects.get", "object"
    message = (f"{ACCOUNT} does not have {permission} access to the Google Cloud Storage {resource}. Permission "
               f"'{permission}' denied on resource (or it may not exist).")
    return json.dumps({"error": {"code": 403, "message": message,
                                 "errors": [{"message": message, "domain": "global", "reason": "forbidden"}]}}).encode()
