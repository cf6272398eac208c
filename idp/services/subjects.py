"""Pairwise subject identifiers (OIDC Core §8.1): a relying party registered with ``subject_type``
``pairwise`` sees, for each person, a ``sub`` derived from the person's public ``sub`` and the client's
sector, so portals of different agencies cannot match people by ``sub``. Clients of one sector (one host,
or one ``sector_identifier_uri``) see the same value, and it never changes while the key does not.

The value is HMAC-SHA-256 under ``[subjects] pairwise_key`` (or a key derived from ``[server]
secret_key``) of the sector and the public ``sub``, base64url without padding (43 characters): §8.1's
"SHA-256 of sector, local id and salt", with the salt as an HMAC key, so it cannot be recomputed
without the key. Changing the key changes every pairwise ``sub``.

The sector identifier (§8.1, OIDC Registration §5): the host of ``sector_identifier_uri`` when the
client registered one, else the host of its redirect URIs, which must then all share one host. The
document at ``sector_identifier_uri`` is a JSON array of URIs that must contain every redirect URI of
the client; it is fetched (by ``check_sector_document``'s caller, through ``services.outbound_http``)
each time the registration is created or changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

from ..errors import ClientDataError

PUBLIC = "public"
PAIRWISE = "pairwise"
SUBJECT_TYPES = (PUBLIC, PAIRWISE)
# The sector document is a short list of URIs; more is not one.
MAX_SECTOR_DOCUMENT = 64 * 1024


def pairwise_key(configured: str, secret_key: str) -> bytes:
    """The HMAC key: [subjects] pairwise_key, or one derived from [server] secret_key when it is empty."""
    if configured:
        return configured.encode()
    return hmac.new(secret_key.encode(), b"idp pairwise subject v1", hashlib.sha256).digest()


def pairwise_subject(key: bytes, sector: str, public_sub: str) -> str:
    # why: the NUL separator keeps ("a.b", "c") and ("a", ".bc") apart; neither part can contain one.
    mac = hmac.new(key, f"{sector}\x00{public_sub}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def host_of(uri: str) -> str:
    return (urlsplit(uri).hostname or "").lower()


def sector_of(redirect_uris: list[str], sector_identifier_uri: str | None) -> str:
    """The sector identifier of a client (§8.1)."""
    if sector_identifier_uri:
        return host_of(sector_identifier_uri)
    hosts = {host_of(uri) for uri in redirect_uris}
    return hosts.pop() if len(hosts) == 1 else ""


def check_pairwise(subject_type: str, redirect_uris: list[str], sector_identifier_uri: str | None) -> None:
    """The registration rules of a subject type, without the fetch."""
    if subject_type not in SUBJECT_TYPES:
        raise ClientDataError("subject_type", "unknown")
    several_hosts = len({host_of(uri) for uri in redirect_uris}) != 1
    if subject_type == PAIRWISE and not sector_identifier_uri and several_hosts:
        # §8.1: redirect URIs on several hosts need a sector_identifier_uri.
        raise ClientDataError("sector_identifier_uri", "required")


def check_sector_document(body: bytes, redirect_uris: list[str], uri: str) -> None:
    """OIDC Registration §5: the document is a JSON array holding every redirect URI of the client."""
    try:
        listed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ClientDataError("sector_identifier_uri", "sector_document", uri) from exc
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise ClientDataError("sector_identifier_uri", "sector_document", uri)
    if not set(redirect_uris) <= set(listed):
        raise ClientDataError("sector_identifier_uri", "sector_mismatch", uri)
