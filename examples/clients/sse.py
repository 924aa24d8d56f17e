"""Follow the elector's Server-Sent Events: one event at connect, then one per change. Reconnects
with Last-Event-ID, so no change is missed across a reconnect. Standard library only.

    python3 sse.py [--events N]
"""

import json
import os
import sys
import time
import urllib.request

URL = os.environ.get("ELECTOR_SSE_URL", "http://localhost:4040/sse")


def events(url: str = URL):
    """Yield each status dict; reconnects forever."""
    last_id = None
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as stream:
                data = []
                for raw in stream:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif not line and data:
                        yield json.loads("\n".join(data))
                        data = []
        except OSError as exc:
            print(f"reconnecting after: {exc}", file=sys.stderr)
            time.sleep(1)


if __name__ == "__main__":
    limit = int(sys.argv[sys.argv.index("--events") + 1]) if "--events" in sys.argv else None
    for count, status in enumerate(events(), 1):
        role = "leader" if status.get("is_leader") else "follower"
        print(f"{role}: leader={status.get('name')} term={status.get('term')}", flush=True)
        if limit is not None and count >= limit:
            break
