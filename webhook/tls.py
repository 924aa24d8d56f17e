"""The serving TLS context, and certificate sources that swap certificates without a restart.

A source loads each new pair into a fresh context and then publishes it (`context`); handshakes read
the published one, so rotation needs no new listener (the same idea as Go's GetCertificate). Never load
into the context being served: `load_cert_chain` sets the certificate, then the key, with the GIL
released, and a handshake in between gets the new certificate and no key ("no shared cipher", which
CI saw under load); a trial that loaded while handshaking in a loop even corrupted OpenSSL's heap.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from pathlib import Path

from certs import pki, webhook_tls
from webhook import kube
from webhook.settings import Settings

log = logging.getLogger("kube_elector.webhook")


def server_context() -> ssl.SSLContext:
    """TLS 1.2+ only, server side; certificates are loaded by a source."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


class FileSource:
    """Certificates from files (a mounted Secret from kube-elector-certs or cert-manager)."""

    def __init__(self, cert_file: Path, key_file: Path, context: ssl.SSLContext | None = None) -> None:
        self._ctx, self._cert, self._key = context or server_context(), cert_file, key_file
        self._loaded: tuple[bytes, bytes] | None = None

    @property
    def ready(self) -> bool:
        return self._loaded is not None

    def expiry_seconds(self) -> float | None:
        """Seconds until the served certificate expires; None before one is loaded."""
        if self._loaded is None:
            return None
        return webhook_tls.expiry_seconds(self._loaded[0], now=datetime.datetime.now(datetime.timezone.utc))
    @property
    def context(self) -> ssl.SSLContext:
        """The context to handshake with: replaced whole on a rotation, never changed once published."""
        return self._ctx

    @property
    def loaded(self) -> tuple[bytes, bytes] | None:
        """The certificate and key files' bytes now served (None: nothing loaded yet)."""
        return self._loaded

    @loaded.setter
    def loaded(self, value: tuple[bytes, bytes] | None) -> None:
        self._loaded = value

    def refresh(self) -> bool:
        """Load the files if they changed; True if a new certificate is now served."""
        try:
            current = (self._cert.read_bytes(), self._key.read_bytes())
        except OSError as exc:
            log.error("certificate unreadable", extra={"event": "cert_unreadable", "error": str(exc)})
            return False
        if current == self._loaded:
            return False
        fresh = server_context()
        try:
            fresh.load_cert_chain(self._cert, self._key)
        except (ssl.SSLError, OSError) as exc:  # e.g. a half-written pair during a Secret update
            log.error("certificate rejected", extra={"event": "cert_rejected", "error": str(exc)})
            return False
        self._ctx, self._loaded = fresh, current  # one reference swap: a handshake sees one whole pair
        log.info("certificate loaded", extra={"event": "cert_loaded", "file": str(self._cert)})
        return True


class SelfManagedSource:
    """Makes its own CA + serving cert, shares them through a Secret, keeps the caBundle right.

    Every replica runs this; they converge on one Secret through optimistic concurrency
    (a create or update that loses the race re-reads). The caBundle is repaired whenever
    it does not trust our CA, e.g. after `kubectl apply` reset it.
    """

    def __init__(self, api: kube.Api, settings: Settings, workdir: Path) -> None:
        self._api, self._settings = api, settings
        workdir.mkdir(parents=True, exist_ok=True)
        self._files = FileSource(workdir / "tls.crt", workdir / "tls.key")
        self._workdir = workdir
        self._written: pki.KeyPair | None = None
        self._names = [*webhook_tls.service_names(settings.service_name, settings.namespace), *settings.cert_extra_dns]

    @property
    def ready(self) -> bool:
        return self._files.ready

    def expiry_seconds(self) -> float | None:
        return self._files.expiry_seconds()

    @property
    def context(self) -> ssl.SSLContext:
        return self._files.context

    def use_directory(self, workdir: Path) -> None:
        """Write the files in `workdir` from now on: each forked worker (webhook/workers.py) keeps its own,
        so that none loads a pair a sibling is writing. The certificate served stays until a refresh."""
        loaded = self._files.loaded
        self._files = FileSource(workdir / "tls.crt", workdir / "tls.key", context=self._files.context)
        self._files.loaded = loaded
        self._workdir, self._written = workdir, None

    def refresh(self) -> bool:
        try:
            bundle = self._current_bundle()
            self._ensure_ca_bundle(bundle.ca.cert_pem)
        except kube.KubeError as exc:
            log.error("certificate sync failed", extra={"event": "cert_sync_failed", "error": str(exc)})
            return False
        if bundle.serving != self._written:  # the TLS context reads files; write them on change only
            bundle.serving.write(self._workdir, "tls")
            self._written = bundle.serving
        return self._files.refresh()

    def _secret_path(self, name: str = "") -> str:
        base = f"/api/v1/namespaces/{self._settings.namespace}/secrets"
        return f"{base}/{name}" if name else base

    def _current_bundle(self) -> webhook_tls.Bundle:
        name = self._settings.cert_secret_name
        for _ in range(3):  # lost races re-read
            try:
                secret = self._api.call("GET", self._secret_path(name))
            except kube.KubeError as exc:
                if exc.status != 404:
                    raise
                secret = None
            bundle = webhook_tls.Bundle.from_secret(secret) if secret else None
            now = datetime.datetime.now(datetime.timezone.utc)
            if bundle and webhook_tls.covers(bundle, self._names, self._settings.cert_extra_ips) and not webhook_tls.needs_renewal(
                bundle.serving.cert_pem, now=now
            ):
                return bundle
            keep_ca = bundle.ca if bundle and not webhook_tls.needs_renewal(bundle.ca.cert_pem, now=now) else None
            fresh = webhook_tls.issue(
                service=self._settings.service_name, namespace=self._settings.namespace, ca=keep_ca,
                extra_dns=self._settings.cert_extra_dns, extra_ips=self._settings.cert_extra_ips,
            )
            body = fresh.to_secret(name=name, namespace=self._settings.namespace)
            try:
                if secret is None:
                    self._api.call("POST", self._secret_path(), body)
                else:
                    body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
                    self._api.call("PUT", self._secret_path(name), body)
                log.info("certificate issued", extra={"event": "cert_issued", "secret": name, "new_ca": keep_ca is None})
                return fresh
            except kube.KubeError as exc:
                if exc.status != 409:
                    raise
        raise kube.KubeError(409, f"secret {name}: kept losing update races")

    def _ensure_ca_bundle(self, ca_pem: bytes) -> None:
        name = self._settings.webhook_configuration_name
        try:
            bundles = kube.ca_bundles(self._api, name)
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
            log.warning("no webhook configuration yet", extra={"event": "ca_bundle_pending", "webhook_configuration": name})
            return
        if bundles and all(webhook_tls.ca_bundle_contains(b, ca_pem) for b in bundles):
            return
        # Keep trusting the previous CA during a CA change, so in-flight certs stay valid; no older one.
        previous = next((b for b in bundles if b), "")
        merged = webhook_tls.pruned_ca_bundle(ca_pem, previous, now=datetime.datetime.now(datetime.timezone.utc))
        kube.patch_ca_bundles(self._api, name, merged, len(bundles))
        log.info("caBundle patched", extra={"event": "ca_bundle_patched", "webhook_configuration": name})
