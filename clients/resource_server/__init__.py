"""A resource server (an API of the cabinet) that accepts the provider's JWT access tokens (RFC 9068)
offline, and DPoP-bound ones (RFC 9449) with their proofs: no call to the provider per request.

Copy it with the API you start from: it needs Flask, requests and joserfc, and knows nothing of the
provider but its issuer (the discovery document names the JWKS). What it checks, per request:

* the token (``Authorization: Bearer`` or ``DPoP``): a JWS with ``typ: at+jwt`` (RFC 9068 §4) signed with
  RS256 or ES256 by a key of the issuer's JWKS (picked by ``kid``; an unknown ``kid`` refetches the JWKS,
  at most every 10 s, so key rotation needs no restart); ``iss`` the issuer, ``aud`` this API's resource
  indicator, ``exp`` in the future, and ``sub``, ``client_id``, ``jti``, ``scope`` present; the scope the
  route needs;
* a token with ``cnf.jkt`` only with the DPoP scheme and a proof (RFC 9449 §4.3, §7.1): ``typ: dpop+jwt``,
  a public ``jwk`` whose RFC 7638 thumbprint is ``cnf.jkt``, ``htm`` and ``htu`` of this request, ``iat``
  within 60 s, ``ath`` the hash of the token, a ``jti`` not seen before (kept in memory: one process; use
  a shared store with several);
* a token without ``cnf`` only with the Bearer scheme.

Revocation: an offline check cannot see it (RFC 9068 §6); tokens live ``[oauth] access_token_ttl``
(10 minutes by default). An API that must see a revocation at once introspects instead.

Run: ``python -m clients.resource_server --issuer http://127.0.0.1:5000 --audience
http://127.0.0.1:5003/api --port 5003``; the client that calls it is registered with
``idp clients create ... --access-token-format jwt --resource http://127.0.0.1:5003/api`` and asks for
tokens with ``resource=http://127.0.0.1:5003/api``.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time

import requests
from flask import Flask
from flask import g
from flask import jsonify
from flask import request
from joserfc import jws
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import OKPKey
from joserfc.jwk import RSAKey

TOKEN_ALGORITHMS = ["RS256", "ES256"]
DPOP_ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]
DPOP_WINDOW = 60
REFETCH_INTERVAL = 10
JWKS_TTL = 300
_KEY_TYPES = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class Refused(Exception):
    """The request does not carry a token this API accepts; ``error`` is RFC 6750 §3.1's or RFC 9449's."""

    def __init__(self, error: str, description: str, scheme: str = "Bearer", status: int = 401):
        super().__init__(description)
        self.error, self.description, self.scheme, self.status = error, description, scheme, status


class IssuerKeys:
    """The issuer's JWKS, from its discovery document, cached and refetched for an unknown ``kid``."""

    def __init__(self, issuer: str, *, session: requests.Session | None = None, ttl: int = JWKS_TTL):
        self.issuer = issuer
        self.session = session or requests.Session()
        self.ttl = ttl
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self.fetches = 0

    def _fetch(self) -> KeySet:
        meta = self.session.get(self.issuer + "/.well-known/openid-configuration", timeout=5)
        meta.raise_for_status()
        answer = self.session.get(meta.json()["jwks_uri"], timeout=5)
        answer.raise_for_status()
        self.fetches += 1
        return KeySet.import_key_set(answer.json())

    def get(self, kid: str | None) -> KeySet:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            known = self._keys is not None and any(key.kid == kid for key in self._keys)
            if self._keys is None or age > self.ttl or (not known and age > REFETCH_INTERVAL):
                self._keys = self._fetch()
                self._fetched_at = time.monotonic()
            return self._keys


class ProofCache:
    """DPoP proof ids seen in the last 2 x DPOP_WINDOW seconds (RFC 9449 §11.1), in this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def first_use(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            self._seen = {k: t for k, t in self._seen.items() if now - t < 2 * DPOP_WINDOW}
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def validate_access_token(token: str, *, issuer: str, audience: str, keys: IssuerKeys) -> dict:
    """The claims of a valid JWT access token for ``audience``, or ``Refused``."""
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError) as error:
        raise Refused("invalid_token", "Not a JWT access token.") from error
    # RFC 9068 §4: the typ header keeps ID tokens and other JWTs from passing as access tokens.
    if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
        raise Refused("invalid_token", "Not a JWT access token (typ).")
    if header.get("alg") not in TOKEN_ALGORITHMS:
        raise Refused("invalid_token", "Unexpected signing algorithm.")
    try:
        claims = jwt.decode(token, keys.get(header.get("kid")), algorithms=TOKEN_ALGORITHMS).claims
        jwt.JWTClaimsRegistry(
            leeway=30,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
            client_id={"essential": True},
            jti={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError) as error:
        raise Refused("invalid_token", "The access token is not valid here.") from error
    return claims


def validate_dpop(
    proof: str | None, *, token: str, jkt: str, method: str, url: str, seen: ProofCache
) -> None:
    """RFC 9449 §4.3 and §7.1: the proof that the caller holds the key ``jkt`` the token is bound to."""
    if not proof:
        raise Refused("invalid_dpop_proof", "A DPoP proof is required.", "DPoP")
    try:
        header = jws.extract_compact(proof.encode("ascii")).headers()
        jwk = header.get("jwk")
        key_class = _KEY_TYPES.get(jwk.get("kty")) if isinstance(jwk, dict) else None
        if (
            header.get("typ") != "dpop+jwt"
            or header.get("alg") not in DPOP_ALGORITHMS
            or key_class is None
            or any(member in jwk for member in _PRIVATE_MEMBERS)
        ):
            raise Refused("invalid_dpop_proof", "Not a DPoP proof.", "DPoP")
        key = key_class.import_key(jwk)
        claims = jwt.decode(proof, key, algorithms=[header["alg"]]).claims
    except (JoseError, ValueError, TypeError, UnicodeError) as error:
        raise Refused("invalid_dpop_proof", "The DPoP proof does not verify.", "DPoP") from error
    ath = _b64(hashlib.sha256(token.encode("ascii")).digest())
    iat = claims.get("iat")
    if (
        claims.get("htm") != method
        or claims.get("htu") != url
        or not isinstance(iat, int | float)
        or abs(time.time() - iat) > DPOP_WINDOW
        or claims.get("ath") != ath
        or not isinstance(claims.get("jti"), str)
    ):
        raise Refused("invalid_dpop_proof", "The DPoP proof is not for this request.", "DPoP")
    if key.thumbprint() != jkt:
        raise Refused("invalid_token", "The token is bound to another key.", "DPoP")
    if not seen.first_use(jkt + " " + claims["jti"]):
        raise Refused("invalid_dpop_proof", "The DPoP proof was used before.", "DPoP")


def authenticate(*, issuer: str, audience: str, keys: IssuerKeys, seen: ProofCache, scope: str) -> dict:
    """The claims of the request's access token, checked for this API and ``scope``; or ``Refused``."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in ("bearer", "dpop") or not token:
        raise Refused("invalid_request", "An access token is required.")
    claims = validate_access_token(token, issuer=issuer, audience=audience, keys=keys)
    jkt = (claims.get("cnf") or {}).get("jkt")
    if jkt:
        if scheme != "dpop":
            # RFC 9449 §7.2: a bound token presented as a bearer token.
            raise Refused("invalid_token", "This token must be used with DPoP.", "DPoP")
        proofs = request.headers.getlist("DPoP")
        if len(proofs) > 1:
            raise Refused("invalid_dpop_proof", "One DPoP proof only.", "DPoP")
        # htu: the URL of this request without query or fragment (behind a proxy: the public one).
        validate_dpop(
            proofs[0] if proofs else None,
            token=token,
            jkt=jkt,
            method=request.method,
            url=request.base_url,
            seen=seen,
        )
    elif scheme != "bearer":
        raise Refused("invalid_token", "This token is not bound to a DPoP key.", "DPoP")
    if scope not in str(claims.get("scope", "")).split():
        raise Refused("insufficient_scope", f"The scope {scope} is required.", status=403)
    return claims


def create_app(issuer: str, audience: str, *, session: requests.Session | None = None) -> Flask:
    app = Flask(__name__)
    keys = IssuerKeys(issuer, session=session)
    seen = ProofCache()
    app.extensions["resource_server"] = keys

    @app.errorhandler(Refused)
    def refused(error: Refused):
        response = jsonify(error=error.error, error_description=error.description)
        response.status_code = error.status
        params = f'error="{error.error}"'
        if error.scheme == "DPoP":
            params += f', algs="{" ".join(DPOP_ALGORITHMS)}"'
        response.headers["WWW-Authenticate"] = f"{error.scheme} {params}"
        return response

    @app.get("/api/me")
    def me():
        g.claims = authenticate(issuer=issuer, audience=audience, keys=keys, seen=seen, scope="profile")
        claims = g.claims
        return jsonify(
            sub=claims["sub"],
            client_id=claims["client_id"],
            scope=claims["scope"],
            bound=bool((claims.get("cnf") or {}).get("jkt")),
        )

    return app
