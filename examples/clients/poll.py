"""The old way (NAIS elector clients): poll http://$ELECTOR_PATH and compare the leader's name with
the hostname. Works with any elector version; a change is seen up to one period late.

    python3 poll.py [--once]
"""

import json
import os
import socket
import sys
import time
import urllib.request

URL = "http://" + os.environ.get("ELECTOR_PATH", "localhost:4040")  # ELECTOR_PATH has no scheme
HOSTNAME = os.environ.get("HOSTNAME") or socket.gethostname()


def is_leader() -> bool:
    with urllib.request.urlopen(URL, timeout=2) as response:
        status = json.load(response)
    return status.get("name") == HOSTNAME


if __name__ == "__main__":
    while True:
        print(f"{HOSTNAME}: {'leader' if is_leader() else 'follower'}", flush=True)
        if "--once" in sys.argv:
            break
        time.sleep(5)
