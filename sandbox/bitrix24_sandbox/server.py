"""Serving the sandbox portal: httpx transports (in-process) and a loopback HTTP/HTTPS server."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bitrix24_sandbox.portal import DroppedConnection

if TYPE_CHECKING:
    from bitrix24_sandbox.portal import Portal


def _answer(portal: Portal, request: httpx.Request, body: bytes) -> tuple[httpx.Response | None, float]:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        status, out_headers, payload, delay = portal.handle(request.method, str(request.url), headers, body)
    except DroppedConnection:
        return None, 0.0
    return httpx.Response(status, headers=out_headers, content=payload, request=request), delay


class SandboxTransport(httpx.BaseTransport):
    """An httpx transport that answers from the portal in this process (no sockets)."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response, delay = _answer(self.portal, request, request.read())
        if response is None:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if delay > 0:
            time.sleep(delay)
        return response


class AsyncSandboxTransport(httpx.AsyncBaseTransport):
    """The asyncio flavour of :class:`SandboxTransport`."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response, delay = _answer(self.portal, request, await request.aread())
        if response is None:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if delay > 0:
            await asyncio.sleep(delay)
        return response


class ServerHandle:
    """A running loopback server: ``url``, ``webhook_url``, ``cert_path`` (HTTPS); stop it or use ``with``."""

    def __init__(self, portal: Portal, server: ThreadingHTTPServer, url: str, cert_path: str | None) -> None:
        self.portal = portal
        self._server = server
        self.url = url
        self.cert_path = cert_path
        self._thread = threading.Thread(target=server.serve_forever, name="b24-sandbox", daemon=True)
        self._thread.start()

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/rest/1/{self.portal.webhook_code}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.portal.public_url = None

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerHandle(url={self.url!r})"


def _make_handler(portal: Portal, scheme: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Small answers on a keep-alive connection go out at once: with Nagle's algorithm each waited for the
        # client's delayed ACK (~40 ms), a cost no portal adds.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            url = f"{scheme}://{self.headers.get('Host', portal.domain)}{self.path}"
            try:
                status, out_headers, payload, delay = portal.handle(self.command, url, headers, body)
            except DroppedConnection:
                self.close_connection = True
                return
            if delay > 0:
                time.sleep(delay)
            self.send_response(status)
            for key, value in out_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: requests are in portal.requests
            return

    return Handler


def self_signed_cert(directory: Path) -> tuple[str, str]:
    """A throwaway certificate for 127.0.0.1/localhost, generated at start (with cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bitrix24-sandbox")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sandbox-cert.pem", directory / "sandbox-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


class _QuietServer(ThreadingHTTPServer):
    """A client that gives up and hangs up is the client's business, not a traceback on our stderr."""

    daemon_threads = True
    # A portal takes many connections at once; the socketserver default of 5 pending connections would drop a
    # client's sixth request in flight and make it retry a second later (benchmarks would measure that, not
    # us).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def serve(portal: Portal, *, host: str = "127.0.0.1", port: int = 0, https: bool = False) -> ServerHandle:
    scheme = "https" if https else "http"
    server = _QuietServer((host, port), _make_handler(portal, scheme))
    server.daemon_threads = True
    cert_path = None
    if https:
        cert_path, key_path = self_signed_cert(Path(tempfile.mkdtemp(prefix="b24-sandbox-")))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    bound_port = server.server_address[1]
    shown_host = "localhost" if https and host == "127.0.0.1" else host
    url = f"{scheme}://{shown_host}:{bound_port}"
    portal.public_url = url
    return ServerHandle(portal, server, url, cert_path)
