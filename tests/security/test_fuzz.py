"""Never a 5xx or a crash; a clear 400 for what we cannot read; a patch that always applies."""

from __future__ import annotations

import base64
import json
import random

import jsonpatch
import pytest
from starlette.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tests import asgi
from tests.security import reviews
from webhook import admission, app, settings

CFG = settings.Settings(max_body_bytes=256 * 1024)
FUZZ_RUNS = 10_000
ELECTOR_FLAGS = {"--election", "--election-namespace", "--http", "--probe-address", "--lease-duration",
                 "--renew-deadline", "--retry-period", "--release-timeout"}


@pytest.fixture(scope="module")
def client():
    return TestClient(app.create_app(CFG))


def check_answer(body: bytes, response) -> str:
    """Asserts the contract for one request; returns the kind of answer for the tally."""
    assert response.status_code < 500, (body[:300], response.text[:300])
    if response.status_code != 200:
        assert response.status_code in (400, 413) and response.json()["error"]
        return f"http-{response.status_code}"
    answer = response.json()
    sent = json.loads(body)
    assert answer["kind"] == "AdmissionReview"
    resp = answer["response"]
    assert resp["uid"] == sent["request"]["uid"]
    if not resp["allowed"]:
        message = resp["status"]["message"]
        assert message and any(field in message for field in ("elector.dev/", "cannot read the pod", "spec.")), message
        return "denied"
    if "patch" in resp:
        assert resp["patchType"] == "JSONPatch"
        ops = json.loads(base64.b64decode(resp["patch"]))
        patched = jsonpatch.apply_patch(sent["request"]["object"], ops)
        assert admission.check_pod(patched) is None
        elector = [c for c in patched["spec"]["initContainers"] if c["name"] == "elector"]
        assert len(elector) <= 1
        return "patched"
    return "allowed"


class Answer:
    """Just what check_answer reads from an HTTP response."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self.text = status, body.decode(errors="replace")

    def json(self):
        return json.loads(self.text)


async def call(application, body: bytes) -> Answer:
    """One POST /mutate straight into the ASGI app: the whole app, without a socket (fast)."""
    status, _, content = await asgi.post(application, [{"type": "http.request", "body": body, "more_body": False}],
                                         headers=((b"content-length", str(len(body)).encode()),))
    return Answer(status, content)


async def test_ten_thousand_generated_reviews():
    application = app.create_app(CFG)
    rng = random.Random(20261126)
    tally: dict[str, int] = {}
    for _ in range(FUZZ_RUNS):
        body = reviews.body(rng)
        kind = check_answer(body, await call(application, body))
        tally[kind] = tally.get(kind, 0) + 1
    # The generator must really reach every branch, or the run proves little.
    assert {"http-400", "denied", "patched", "allowed"} <= set(tally), tally
    print("fuzz tally:", tally)


def test_huge_body_is_refused_before_it_is_parsed(client):
    review = reviews.valid_review(random.Random(1))
    review["request"]["object"]["metadata"]["annotations"]["big"] = "x" * (CFG.max_body_bytes + 1)
    assert client.post("/mutate", content=json.dumps(review).encode()).status_code == 413


annotation_maps = st.dictionaries(
    st.one_of(st.sampled_from(reviews.ODD_KEYS), st.text(min_size=1, max_size=20)),
    st.one_of(st.sampled_from(reviews.ODD_ANNOTATION_VALUES), st.text(max_size=30)),
    max_size=6,
)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=annotation_maps)
def test_no_annotation_changes_the_image_or_adds_privileges(client, notes):
    review = reviews.valid_review(random.Random(0))
    review["request"]["kind"]["kind"], review["request"]["operation"] = "Pod", "CREATE"
    review["request"]["namespace"] = "shop"
    review["request"]["object"]["metadata"]["annotations"] = {**notes, "elector.dev/inject": "true"}
    review["request"]["object"]["spec"]["containers"] = [{"name": "app", "image": "app:1"}]
    review["request"]["object"]["spec"].pop("initContainers", None)
    body = json.dumps(review).encode()
    response = client.post("/mutate", content=body)
    assert check_answer(body, response) in ("patched", "denied")
    resp = response.json()["response"]
    if resp["allowed"]:
        patched = jsonpatch.apply_patch(review["request"]["object"], json.loads(base64.b64decode(resp["patch"])))
        elector = patched["spec"]["initContainers"][0]
        assert elector["image"] == CFG.image
        assert elector["securityContext"]["runAsNonRoot"] is True
        assert elector["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert elector["securityContext"]["allowPrivilegeEscalation"] is False
        assert patched["spec"]["containers"][0]["image"] == "app:1"
        assert "securityContext" not in patched["spec"]["containers"][0]
        # The sidecar only elects: its flags are the election's, its env the pod's identity. Routing and
        # rollout succession (leader-service, leader-label, rollout-aware) are the controller's, from the annotations.
        flags = {arg.split("=", 1)[0] for arg in elector["args"]}
        assert flags <= ELECTOR_FLAGS, flags - ELECTOR_FLAGS
        assert [e["name"] for e in elector["env"]] == ["ELECTOR_LOG_FORMAT", "POD_NAME", "POD_NAMESPACE", "POD_UID"]
