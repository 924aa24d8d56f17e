#!/bin/sh
# The elector's API from a shell, inside a pod that has the sidecar (the webhook sets ELECTOR_*).
#   sh curl.sh            who leads, am I the leader, then the change stream for FOLLOW_SECONDS (5)
set -eu
GET_URL=${ELECTOR_GET_URL:-http://${ELECTOR_PATH:-localhost:4040}/}
SSE_URL=${ELECTOR_SSE_URL:-http://${ELECTOR_PATH:-localhost:4040}/sse}

# 1. Who leads now: {"name": "<leader pod>", "is_leader": ..., "term": ..., "valid_until": ...}
curl -fsS "$GET_URL"
echo

# 2. Am I the leader? (a cron job's guard: do the work only on the leader)
if curl -fsS "$GET_URL" | grep -q '"is_leader":true'; then echo "I am the leader"; else echo "I am a follower"; fi

# 3. Block until something changes (long poll): ?wait=30s returns at the next change or after 30 s.
#    curl -fsS "${GET_URL}?wait=30s"

# 4. Follow every change as Server-Sent Events: one `data: {json}` line per change.
curl -fsSN --max-time "${FOLLOW_SECONDS:-5}" "$SSE_URL" | sed -n 's/^data: //p' || true
