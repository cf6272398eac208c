"""DPoP (RFC 9449): sender-constrained access and refresh tokens, on joserfc (authlib has no DPoP).

A proof (the ``DPoP`` header, one only) is checked as §4.3 says: a JWS of ``typ: dpop+jwt`` signed with an
asymmetric algorithm by the public key in its ``jwk`` header (no private members); ``htm`` the request
method and ``htu`` the endpoint's URL under the issuer (no query, no fragment); ``iat`` within
``[dpop] iat_window`` of the provider's clock; a ``jti`` seen once per key (``services.replay``, in the
database every host shares, kept for twice the window); at a resource, ``ath`` the hash of the access
token; and, with ``[dpop] require_nonce``, a ``nonce`` the provider issued.

* Token endpoint (``bind_token_request``): a valid proof binds the tokens to the key's RFC 7638
  thumbprint (``tokens.jkt``; a JWT access token carries it as ``cnf.jkt``), and the token type is
  ``DPoP``. A client registered with ``dpop_bound_access_tokens`` must send one (§5.2). A refresh of a
  bound token needs a proof by the same key, for public and confidential clients alike.
* Authorization code binding (§10): ``dpop_jkt`` at /authorize or in a pushed request, or the key of a
  DPoP proof sent to /par (§10.1; both: they must agree), is kept with the code; the code is then
  redeemed only with a proof by that key, otherwise ``invalid_grant``.
* UserInfo (``DPoPTokenValidator``): ``Authorization: DPoP <token>`` with a proof whose key matches the
  binding; a bound token presented as ``Bearer`` is refused (§7.2).
* Introspection reports ``token_type: DPoP`` and ``cnf.jkt`` (§6.2).
* Nonces (§8) are stateless: the issue time and an HMAC of it under a key from ``[server] secret_key``,
  valid ``[dpop] nonce_lifetime`` seconds on every host. A proof without a valid one, when required, is
  answered ``use_dpop_nonce`` with a fresh ``DPoP-Nonce``; every answer of the token endpoint, UserInfo and
  introspection carries a fresh one when nonces are required.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import g
from flask import request as flask_request
from joserfc import jws
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jwk import OKPKey
from joserfc.jwk import RSAKey

from ..extensions import db
from ..runtime import current
from ..runtime import settings
from ..services import replay
from ..urls import public_url

ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_KEY_TYPES = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}
_NONCE_LABEL = b"idp/dpop/nonce/v1"
MAX_PROOF = 8192
# An RFC 7638 thumbprint with SHA-256, base64url without padding (RFC 9449 §10: dpop_jkt).
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")


class InvalidDPoPProofError(OAuth2Error):
    """RFC 9449 §7.1 / §12.2."""

    error = "invalid_dpop_proof"
    status_code = 400


class UseDPoPNonceError(OAuth2Error):
    """RFC 9449 §8: the proof needs a nonce from the provider; the answer carries a fresh one."""

    error = "use_dpop_nonce"
    status_code = 400

    def get_headers(self):
        return super().get_headers() + [("DPoP-Nonce", new_nonce())]


class _ResourceError(InvalidTokenError):
    """At a resource (UserInfo) the DPoP errors are 401 with a DPoP challenge (RFC 9449 §7.1)."""

    def __init__(self, error: str, description: str, nonce: bool = False):
        super().__init__(description=description)
        self.error = error
        self._nonce = nonce

    def get_headers(self):
        headers = [
            (name, value) for name, value in super().get_headers() if name.lower() != "www-authenticate"
        ]
        algs = " ".join(ALGORITHMS)
        headers.append(("WWW-Authenticate", f'DPoP error="{self.error}", algs="{algs}"'))
        if self._nonce:
            headers.append(("DPoP-Nonce", new_nonce()))
        return headers


def enabled() -> bool:
    return settings().dpop.enabled


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _nonce_key() -> bytes:
    return hmac.new(settings().server.secret_key.encode("utf-8"), _NONCE_LABEL, hashlib.sha256).digest()


def new_nonce() -> str:
    issued = struct.pack(">Q", current().clock())
    return _b64(issued + hmac.new(_nonce_key(), issued, hashlib.sha256).digest()[:16])


def _nonce_valid(nonce) -> bool:
    if not isinstance(nonce, str) or len(nonce) > 64:
        return False
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except ValueError:
        return False
    if len(raw) != 24:
        return False
    issued, mac = raw[:8], raw[8:]
    if not hmac.compare_digest(mac, hmac.new(_nonce_key(), issued, hashlib.sha256).digest()[:16]):
        return False
    age = current().clock() - struct.unpack(">Q", issued)[0]
    return -5 <= age <= settings().dpop.nonce_lifetime


def endpoint_url(endpoint: str) -> str:
    # The htu a client signs is the URL it called, which the issuer names (never the Host header).
    return public_url(endpoint)


def access_token_hash(access_token: str) -> str:
    return _b64(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def proof_header(headers) -> str | None:
    """The one DPoP header of a request, None without any; more than one is invalid (§4.3)."""
    if headers.get("DPoP") is None:
        # Most requests carry none: answered without collecting every header (getlist scans them all).
        return None
    values = headers.getlist("DPoP") if hasattr(headers, "getlist") else [headers.get("DPoP")]
    values = [value for value in values if value is not None]
    if not values:
        return None
    if len(values) > 1:
        raise InvalidDPoPProofError("More than one DPoP header.")
    return values[0]


def validate_proof(proof: str, *, htm: str, htu: str, access_token: str | None = None) -> str:
    """Check a proof (RFC 9449 §4.3); return the thumbprint of its key. Raises InvalidDPoPProofError or
    UseDPoPNonceError."""
    if not isinstance(proof, str) or len(proof) > MAX_PROOF:
        raise InvalidDPoPProofError("The DPoP proof is missing or too long.")
    try:
        header = jws.extract_compact(proof.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError) as error:
        raise InvalidDPoPProofError("The DPoP proof is not a JWS.") from error
    if header.get("typ") != "dpop+jwt" or header.get("alg") not in ALGORITHMS:
        raise InvalidDPoPProofError("The DPoP proof must be a dpop+jwt signed with an asymmetric algorithm.")
    jwk = header.get("jwk")
    key_class = _KEY_TYPES.get(jwk.get("kty")) if isinstance(jwk, dict) else None
    if key_class is None or any(member in jwk for member in _PRIVATE_MEMBERS):
        raise InvalidDPoPProofError("The DPoP proof must carry a public key in 'jwk'.")
    try:
        key = key_class.import_key(jwk)
        claims = jwt.decode(proof, key, algorithms=[header["alg"]]).claims
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidDPoPProofError("The DPoP proof's signature does not verify.") from error
    now = current().clock()
    window = settings().dpop.iat_window
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise InvalidDPoPProofError("The DPoP proof has no usable 'jti'.")
    if claims.get("htm") != htm or not _same_uri(claims.get("htu"), htu):
        raise InvalidDPoPProofError("The DPoP proof is for another request ('htm', 'htu').")
    if not isinstance(iat, int | float) or abs(now - iat) > window:
        raise InvalidDPoPProofError("The DPoP proof's 'iat' is too far from now.")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise InvalidDPoPProofError("The DPoP proof's 'ath' does not match the access token.")
    if settings().dpop.require_nonce and not _nonce_valid(claims.get("nonce")):
        raise UseDPoPNonceError("A DPoP nonce from the provider is required.")
    jkt = key.thumbprint()
    # §11.1: a proof is used once; the jti is kept while a proof with this iat could still be accepted.
    if not replay.first_use(db.session, "dpop", jkt, jti, expires_at=now + 2 * window):
        raise InvalidDPoPProofError("The DPoP proof has been used before.")
    db.session.commit()
    return jkt


def _same_uri(claimed, expected: str) -> bool:
    # §4.3: compared without query and fragment; scheme and host are case-insensitive.
    if not isinstance(claimed, str):
        return False
    claimed = claimed.split("#", 1)[0].split("?", 1)[0]
    scheme, _, rest = claimed.partition("://")
    host, _, path = rest.partition("/")
    e_scheme, _, e_rest = expected.partition("://")
    e_host, _, e_path = e_rest.partition("/")
    return (scheme.lower(), host.lower(), path) == (e_scheme.lower(), e_host.lower(), e_path)


def check_token_request(headers) -> None:
    """At the token endpoint, before any grant runs: validate the request's proof, if any, and keep its
    key's thumbprint for ``bind_token_request``. First, because the proof's jti is committed at once, and
    the grants commit the code or refresh-token claim only with the new tokens."""
    g.idp_dpop_jkt = None
    if not enabled():
        return
    proof = proof_header(headers)
    if proof is not None:
        g.idp_dpop_jkt = validate_proof(proof, htm="POST", htu=endpoint_url("oauth.token"))


def requested_jkt(grant, redirect_uri: str) -> str | None:
    """The ``dpop_jkt`` of an authorization request (§10), checked; None without one or with DPoP off."""
    value = grant.request.payload.data.get("dpop_jkt")
    if value is None or not enabled():
        return None
    if not _THUMBPRINT.fullmatch(value):
        raise InvalidRequestError(
            "'dpop_jkt' must be the base64url SHA-256 JWK thumbprint of the DPoP key.",
            redirect_uri=redirect_uri,
            state=grant.request.payload.state,
        )
    return value


def bind_pushed_request(headers, params: list[tuple[str, str]]) -> None:
    """§10.1: a DPoP proof sent with a pushed authorization request binds its code to the proof's key,
    as ``dpop_jkt`` would; with both, they must name the same key."""
    if not enabled():
        return
    proof = proof_header(headers)
    if proof is None:
        return
    jkt = validate_proof(proof, htm="POST", htu=endpoint_url("oauth.par_endpoint"))
    given = [value for key, value in params if key == "dpop_jkt"]
    if given and given != [jkt]:
        raise InvalidDPoPProofError("'dpop_jkt' is not the thumbprint of the DPoP proof's key.")
    if not given:
        params.append(("dpop_jkt", jkt))


def bind_token_request(grant, binding) -> None:
    """Once the token request is valid: the key its tokens are bound to (or none)."""
    client = grant.request.client
    parent = grant.request.refresh_token
    bound_before = getattr(parent, "jkt", None) if parent is not None else None
    jkt = g.get("idp_dpop_jkt")
    code_jkt = getattr(grant.request.authorization_code, "dpop_jkt", None)
    if code_jkt and (jkt is None or not hmac.compare_digest(jkt, code_jkt)):
        # §10: the code was bound to a key at the authorization request; the token request must prove it.
        raise InvalidGrantError("The authorization code is bound to another DPoP key (RFC 9449, section 10).")
    if jkt is None:
        if client.dpop_bound_access_tokens and enabled():
            raise InvalidDPoPProofError("This client's tokens must be bound with DPoP: send a DPoP proof.")
        if bound_before:
            raise InvalidDPoPProofError("The refresh token is bound to a DPoP key: send a proof by it.")
        return
    if bound_before and jkt != bound_before:
        raise InvalidDPoPProofError("The refresh token is bound to another DPoP key.")
    binding.jkt = jkt


class DPoPTokenValidator(_BearerTokenValidator):
    """``Authorization: DPoP <token>`` at UserInfo (RFC 9449 §7.1)."""

    TOKEN_TYPE = "dpop"

    def __init__(self, bearer, realm=None):
        super().__init__(realm)
        self._bearer = bearer

    def authenticate_token(self, token_string):
        return self._bearer.authenticate_token(token_string)

    def validate_request(self, request):
        if not enabled():
            raise _ResourceError("invalid_token", "DPoP is not enabled.")

    def validate_token(self, token, scopes, request):
        self._bearer.check(token, scopes, request)
        access_token = (request.headers.get("Authorization") or "").split(None, 1)[-1]
        try:
            proof = proof_header(request.headers)
            if proof is None:
                raise InvalidDPoPProofError("A DPoP proof is required with a DPoP token.")
            htu = endpoint_url(flask_request.endpoint)
            jkt = validate_proof(proof, htm=flask_request.method, htu=htu, access_token=access_token)
        except UseDPoPNonceError as error:
            raise _ResourceError("use_dpop_nonce", error.description, nonce=True) from error
        except InvalidDPoPProofError as error:
            raise _ResourceError("invalid_dpop_proof", error.description) from error
        if not token.jkt or token.jkt != jkt:
            raise _ResourceError("invalid_token", "The access token is not bound to this DPoP key.")


def attach_nonce(response):
    header = nonce_header()
    if header is not None:
        response.headers[header[0]] = header[1]
    return response


def nonce_header() -> tuple[str, str] | None:
    """RFC 9449 §8: with nonces required, the next nonce, which every answer of the endpoints that take a
    proof hands the client; None otherwise."""
    if enabled() and settings().dpop.require_nonce:
        return ("DPoP-Nonce", new_nonce())
    return None
