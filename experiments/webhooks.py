"""Signed webhooks (DESIGN.md §3): the body, the headers, the signature, the receiver's check
and the retry schedule. Pure: no Django, so a receiver can copy this file as it is.

Each POST carries

    Attune-Event: <event>
    Attune-Delivery: <delivery id>
    Attune-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>

Signing the timestamp with the body lets a receiver refuse a replayed request: a signature
older than TOLERANCE_SECONDS is rejected even though it is genuine.
"""

import hashlib
import hmac
import ipaddress
import json
import time
from typing import Any

EVENT_HEADER = "Attune-Event"
DELIVERY_HEADER = "Attune-Delivery"
SIGNATURE_HEADER = "Attune-Signature"
SIGNATURE_VERSION = "v1"
TOLERANCE_SECONDS = 300

# Retries (DESIGN.md §6): 1 min, 2, 4, … doubling, never more than 6 h apart; the tenth
# failed attempt is final.
MAX_ATTEMPTS = 10
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 6 * 3600


def body_encode(document: dict[str, Any]) -> bytes:
    """The raw body: compact JSON in UTF-8, keys sorted, so a retry sends the same bytes."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def signature_compute(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256(secret, f"{timestamp}.{body}")."""
    message = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={int(timestamp)},{SIGNATURE_VERSION}={signature_compute(secret, timestamp, body)}"


def request_headers(
    *, secret: str, event: str, delivery_id: int, body: bytes, timestamp: int
) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "Attune-Webhooks/1",
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery_id),
        SIGNATURE_HEADER: signature_header(secret, body, timestamp),
    }


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` (the Attune-Signature value) signs `body` (the raw bytes received)
    with `secret`, and was made within `tolerance` seconds of `now` (unix seconds; the clock
    when omitted). Several v1 entries may be present (while a secret is rotated): one
    matching is enough. Compares in constant time."""
    if not header:
        return False
    raw = body.encode() if isinstance(body, str) else body
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == SIGNATURE_VERSION:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature_compute(secret, timestamp, raw)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def retry_delay_seconds(attempts: int) -> int:
    """How long to wait after the `attempts`-th failed attempt: 60 · 2^(attempts−1) seconds,
    at most MAX_RETRY_SECONDS."""
    if attempts < 1:
        return 0
    return min(FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 30), MAX_RETRY_SECONDS)


def address_is_public(address: str) -> bool:
    """Whether an IP address is globally routable: loopback, private, link-local, shared
    (100.64/10), reserved, multicast and unspecified addresses are not, nor IPv4 addresses
    mapped into IPv6."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return ip.is_global and not ip.is_multicast
