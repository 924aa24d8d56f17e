"""Just enough of the Kubernetes API for the elector, in memory, plain HTTP on 127.0.0.1 (stdlib only).

Run by rootfs.py in the image's build stage (no network, no API server there) so that the elector goes
through its real paths while its imports are traced: Lease GET/POST/PUT with resourceVersion conflicts, a
Lease watch (chunked), and an app health URL. Any other path is a plain object store (GET, POST to the
collection, PUT, PATCH answered with the object): the webhook's Secret and webhook configuration. Not a
test double for behaviour: tests run against a real kube-apiserver.

    python fake_api.py PORTFILE     # listens on 127.0.0.1:0, writes the port to PORTFILE, serves forever
"""
from __future__ import annotations

import http.server
import json
import re
import sys
import threading
import time

LEASE = re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases(?:/([^/?]+))?(?:\?(.*))?$")

leases: dict[tuple[str, str], dict] = {}
objects: dict[str, dict] = {}  # any other path -> its object
version = [0]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _stored(self, namespace: str, name: str, obj: dict) -> dict:
        version[0] += 1
        meta = dict(obj.get("metadata") or {}, name=name, namespace=namespace,
                    resourceVersion=str(version[0]), uid=f"uid-{namespace}-{name}")
        leases[(namespace, name)] = dict(obj, metadata=meta)
        return leases[(namespace, name)]

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/healthz"):
            self._send(200, {"status": "ok"})
            return
        match = LEASE.match(self.path)
        if not match:
            path, _, query = self.path.partition("?")
            if "watch=true" in query:  # a watch on a collection: nothing happens for 1 s, then it ends
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                time.sleep(1)
                self.wfile.write(b"0\r\n\r\n")
                return
            if "labelSelector=" in query:  # a list: empty
                self._send(200, {"items": [], "metadata": {"resourceVersion": str(version[0])}})
                return
            with lock:
                found = objects.get(path)
            self._send(200, found) if found else self._send(404, {"message": "not found"})
            return
        namespace, name, query = match.groups()
        if name:
            with lock:
                found = leases.get((namespace, name))
            self._send(200, found) if found else self._send(404, {"message": f"leases {name!r} not found"})
            return
        self._watch(namespace, query or "")

    def _watch(self, namespace: str, query: str) -> None:
        """A watch: the Lease named in the fieldSelector as ADDED, then MODIFIED on change, for 2 s."""
        wanted = re.search(r"metadata\.name(?:%3D|=)([^&]+)", query)
        name = wanted.group(1) if wanted else ""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._events(namespace, name)
        except OSError:  # the elector closed the watch
            self.close_connection = True

    def _events(self, namespace: str, name: str) -> None:
        seen = None
        for _ in range(40):
            with lock:
                lease = leases.get((namespace, name))
            rv = lease and lease["metadata"]["resourceVersion"]
            if lease and rv != seen:
                event = json.dumps({"type": "ADDED" if seen is None else "MODIFIED", "object": lease}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                seen = rv
            time.sleep(0.05)
        self.wfile.write(b"0\r\n\r\n")

    def _other(self, status: int, *, create: bool) -> None:
        """POST (create=True: to the collection) or PUT of an object outside the Lease routes."""
        obj = self._body()
        path = self.path.split("?")[0]
        if create:
            path = f"{path}/{obj['metadata']['name']}"
        with lock:
            version[0] += 1
            obj["metadata"] = dict(obj.get("metadata") or {}, resourceVersion=str(version[0]))
            objects[path] = obj
        self._send(status, obj)

    def do_PATCH(self) -> None:  # noqa: N802
        self._body()
        with lock:
            found = objects.get(self.path.split("?")[0])
        self._send(200, found) if found else self._send(404, {"message": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        match = LEASE.match(self.path)
        if not match:
            self._other(201, create=True)
            return
        if match.group(2):
            self._send(404, {"message": "not found"})
            return
        obj = self._body()
        namespace, name = match.group(1), obj["metadata"]["name"]
        with lock:
            if (namespace, name) in leases:
                self._send(409, {"message": f"leases {name!r} already exists"})
                return
            stored = self._stored(namespace, name, obj)
        self._send(201, stored)

    def do_PUT(self) -> None:  # noqa: N802
        match = LEASE.match(self.path)
        if not match:
            self._other(200, create=False)
            return
        if not match.group(2):
            self._send(404, {"message": "not found"})
            return
        namespace, name = match.group(1), match.group(2)
        obj = self._body()
        with lock:
            current = leases.get((namespace, name))
            if current is None:
                self._send(404, {"message": "not found"})
                return
            if obj.get("metadata", {}).get("resourceVersion") != current["metadata"]["resourceVersion"]:
                self._send(409, {"message": "the object has been modified"})
                return
            stored = self._stored(namespace, name, obj)
        self._send(200, stored)


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1], "w", encoding="utf-8") as handle:
        handle.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
