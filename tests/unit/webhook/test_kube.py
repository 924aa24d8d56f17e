"""The webhook's only API use, its caBundle (the TLS Secret is tls.SelfManagedSource's), against a recording Api."""

import base64

from webhook import kube


class RecordingApi:
    def __init__(self, answer=None):
        self.sent = []
        self.answer = answer

    def call(self, method, path, body=None, **kwargs):
        self.sent.append((method, path, body, kwargs.get("content_type")))
        return self.answer


MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kube-elector"


def test_ca_bundles_are_read_as_pem_text_one_per_webhook():
    pem = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n"
    api = RecordingApi({"webhooks": [{"clientConfig": {"caBundle": base64.b64encode(pem.encode()).decode()}},
                                     {"clientConfig": {"url": "https://x"}}]})
    assert kube.ca_bundles(api, "kube-elector") == [pem, None]
    assert api.sent == [("GET", MWC, None, None)]


def test_the_ca_bundle_patch_touches_only_the_ca_bundles_of_our_configuration():
    api = RecordingApi()
    kube.patch_ca_bundles(api, "kube-elector", b"PEM", 2)
    encoded = base64.b64encode(b"PEM").decode()
    assert api.sent == [("PATCH", MWC, [
        {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": encoded},
        {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": encoded},
    ], "application/json-patch+json")]
