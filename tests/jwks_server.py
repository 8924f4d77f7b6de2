"""A token issuer's key set on 127.0.0.1, run as its own process: `python jwks_server.py PORT DIR`.

Serves DIR/jwks.json at /jwks.json and DIR/openid-configuration.json at
/.well-known/openid-configuration, re-read on every request (so a test rotates keys by
rewriting the file), and appends each request's path to DIR/requests.log: the count of
fetches is taken at the server, not trusted from the client.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROUTES = {
    "/jwks.json": "jwks.json",
    "/.well-known/openid-configuration": "openid-configuration.json",
}


def serve(port: int, folder: Path) -> None:
    log = (folder / "requests.log").open("a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.write(self.path + "\n")
            name = ROUTES.get(self.path)
            body = (folder / name).read_bytes() if name and (folder / name).exists() else None
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
