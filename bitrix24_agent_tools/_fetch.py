"""Fetching a public web address a person named (an upload "from this URL"), without the model ever carrying
the bytes. Only http(s); the host's every address must be public unless private ones are allowed (a model
must not make the server read its own network: cloud metadata, admin consoles), and the connection goes to
the address that was checked (no second lookup); no redirects (one could lead there); at most
``max_bytes``."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["fetch_public"]


def _check_host(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: ``host`` resolved once, every address checked; the fetch then goes to that
    address (no second lookup a rebinding DNS could answer differently)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"cannot resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not allow_private and not address.is_global:
            raise ValueError(
                f"{host} resolves to a non-public address ({address}); refused "
                "(Toolbox(allow_private_urls=True) allows it)"
            )
    if not addresses:
        raise ValueError(f"cannot resolve {host}")
    return str(addresses[0])


def fetch_public(step: Any, *, allow_private: bool = False, timeout: float = 30.0) -> bytes:
    """The bytes at ``step.url`` (a :class:`~bitrix24_agent_tools.packs.base.Fetch` with ``portal=False``)."""
    parts = urlsplit(str(step.url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"only http(s) URLs can be fetched, got {str(step.url)[:80]!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _check_host(parts.hostname, port, allow_private)
    # connect to the checked address; the name still goes in Host and (TLS) in SNI and the certificate check
    shown = f"[{address}]" if ":" in address else address
    pinned = parts._replace(netloc=f"{shown}:{port}").geturl()
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    out = bytearray()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            request = http.build_request(
                "GET", pinned, headers={"Host": host_header}, extensions={"sni_hostname": parts.hostname}
            )
            response = http.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise ValueError(f"{parts.hostname} answered HTTP {response.status_code}")
                for chunk in response.iter_bytes():
                    out += chunk
                    if len(out) > step.max_bytes:
                        raise ValueError(f"the file is larger than {step.max_bytes} bytes")
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise ValueError(f"could not fetch {parts.hostname}: {type(exc).__name__}") from None
    return bytes(out)
