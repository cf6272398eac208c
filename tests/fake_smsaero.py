"""A local stand-in for the SMS Aero HTTP API, over TLS with a throw-away certificate for 127.0.0.1,
so the real smsaero-api client, requests and TLS all run and nothing leaves the machine. The ``gateway``
fixture runs one."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

EMAIL = "ops@migration-center.example.ru"
API_KEY = "k3yV4lue-0123456789abcd"


def _self_signed(directory: str, host: str = "127.0.0.1") -> tuple[str, str]:
    """A certificate (its own CA) for ``host``, an IP address or a DNS name; (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([subject]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # why: socketserver prints the traceback of a client that hung up mid-answer straight to
        # standard error, where tests/flows/test_log_secrets.py expects the provider's JSON lines only.
        pass


class FakeSmsAero:
    """``mode``: "ok", "reject", "no_credits", "garbage" (non-JSON 502) or "slow" (answering after
    ``delay``)."""

    def __init__(self, email: str, api_key: str):
        self.email, self.api_key = email, api_key
        self.mode = "ok"
        self.delay = 0.0
        self.received: list[dict] = []
        self._dir = tempfile.mkdtemp(prefix="fake-smsaero-")
        self.ca_path, key_path = _self_signed(self._dir)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                expected = base64.b64encode(f"{fake.email}:{fake.api_key}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    return self._reply(401, {"success": False, "message": "invalid credentials"})
                if fake.mode == "slow":
                    time.sleep(fake.delay)
                if fake.mode == "garbage":
                    return self._reply(502, None)
                if fake.mode == "reject":
                    return self._reply(200, {"result": "reject", "reason": "number blocked"})
                if fake.mode == "no_credits":
                    return self._reply(200, {"result": "no credits"})
                fake.received.append({"path": self.path, **body})
                return self._reply(
                    200,
                    {
                        "success": True,
                        "data": {"id": len(fake.received), "number": body.get("number"), "status": 0},
                    },
                )

            def _reply(self, status, payload):
                data = b"<html>bad gateway</html>" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if payload is not None else "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def gate(self) -> str:
        return f"@127.0.0.1:{self.port}/v2/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(monkeypatch):
    """A running ``FakeSmsAero`` that knows ``EMAIL`` and ``API_KEY``, trusted by requests."""
    with FakeSmsAero(EMAIL, API_KEY) as fake:
        # requests reads the CA bundle from the environment, so the real TLS verification runs.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
        yield fake
