"""The least a stdlib-Python elector must do, for elector_footprint's RSS floor: no election, no asyncio, no
HTTP server, no logging; one TLS connection watching a Lease and one reading it every 6 s (a leader's
rate at the default 15 s lease), with the image's interpreter, `ssl` and `json`.

Run inside the elector image (bind-mounted; the image has no shell): `python floor_client.py KUBECONFIG
NAMESPACE LEASE`, the kubeconfig as localplane writes it (JSON, a bearer token). Whatever RSS it holds after
a minute, an elector written in Python cannot hold less: the interpreter, OpenSSL's pages and one TLS
context are its, before any code of the elector's own. Stdlib only, one file: it is mounted alone.
"""
import base64
import json
import socket
import ssl
import sys
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    path, namespace, lease = sys.argv[1:4]
    with open(path, encoding="utf-8") as file:
        config = json.load(file)
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    server = urlsplit(cluster["server"])
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    head = (f"Host: {server.netloc}\r\nAuthorization: Bearer {user['token']}\r\n"
            "Accept: application/json\r\n")
    url = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    def connect() -> ssl.SSLSocket:
        raw = socket.create_connection((server.hostname, server.port), timeout=30)
        return context.wrap_socket(raw, server_hostname=server.hostname)

    def watch() -> None:
        while True:
            with connect() as conn:
                conn.settimeout(None)
                conn.sendall(f"GET {url}?watch=true&fieldSelector=metadata.name%3D{lease}&timeoutSeconds=300 "
                             f"HTTP/1.1\r\n{head}\r\n".encode())
                pending = b""
                while data := conn.recv(65536):
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.startswith(b"{"):
                            json.loads(line)

    threading.Thread(target=watch, daemon=True).start()
    with connect() as conn:
        while True:
            conn.sendall(f"GET {url}/{lease} HTTP/1.1\r\n{head}\r\n".encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += conn.recv(65536)
            headers, _, body = answer.partition(b"\r\n\r\n")
            length = next((int(h.split(b":")[1]) for h in headers.split(b"\r\n")
                           if h.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            json.loads(body)
            time.sleep(6)


if __name__ == "__main__":
    main()
