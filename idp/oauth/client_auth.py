"""Client authentication by JWT assertion (RFC 7523 §2.2, OIDC Core §9) on authlib's
``JWTBearerClientAssertion``: ``private_key_jwt`` (signed with a key of the client's ``jwks`` or
``jwks_uri``) and ``client_secret_jwt`` (HMAC with the client secret).

* ``iss`` = ``sub`` = the client_id; ``aud`` = the issuer or the URL of the endpoint called (token, PAR,
  introspection, revocation); ``exp`` at most ``[client_auth] assertion_max_lifetime`` ahead;
* ``jti`` once only (``services.replay``, in the database every host shares), kept until ``exp``;
* each method for the clients registered with it only, and only its algorithms: asymmetric ones for
  private_key_jwt, HS256 for client_secret_jwt, never ``none``;
* ``jwks_uri`` is fetched through the provider's outbound client (``services.outbound_http``: deadline,
  size cap, no private addresses), cached ``[client_auth] jwks_cache_ttl``, and fetched again at once
  (at most every 10 seconds) for a key id it does not hold, so a client can rotate its keys.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7523.client import ASSERTION_TYPE
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwk import OctKey
from werkzeug.routing import BuildError

from ..errors import ClientDataError
from ..extensions import db
from ..runtime import current
from ..runtime import settings
from ..services import client_secrets
from ..services import clients
from ..services import replay
from ..services.outbound_http import OutboundError
from ..urls import public_url

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
HMAC_ALGORITHMS = ["HS256"]
# A key id missing from a cached JWK Set refetches it, but not more often than this, seconds.
REFETCH_INTERVAL = 10
# The endpoints that accept client authentication; an assertion may name any of them as aud.
_AUTHENTICATING_ENDPOINTS = ("oauth.token", "oauth.introspect", "oauth.revoke", "oauth.par_endpoint")


class _Assertion(JWTBearerClientAssertion):
    ALGORITHMS: list[str] = []

    def __init__(self):
        # Leeway for exp and nbf: the clocks of client and provider differ a little.
        super().__init__(validate_jti=True, leeway=30)

    def __call__(self, query_client, request):
        data = request.form
        assertion = data.get("client_assertion")
        if data.get("client_assertion_type") != ASSERTION_TYPE or not isinstance(assertion, str):
            return None
        if len(assertion) > 8192:
            raise InvalidClientError(description="The client assertion is too long.")
        header, claims = self.extract_assertion(assertion)
        client_id = claims.get("sub")
        client = query_client(client_id) if isinstance(client_id, str) else None
        # The other assertion method's client: let that method answer.
        if client is not None and client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD:
            return None
        if client is None:
            raise InvalidClientError(description="The client does not exist on this server.")
        # RFC 7523 §3 / RFC 6749 §2.3: a client_id sent beside the assertion must be the same client.
        if data.get("client_id") not in (None, client_id):
            raise InvalidClientError(description="'client_id' does not match the assertion.")
        if header.get("alg") not in self.ALGORITHMS:
            raise InvalidClientError(description="The assertion's algorithm is not accepted.")
        request.client = client
        try:
            token = jwt.decode(assertion, self.key_for(client), algorithms=self.ALGORITHMS)
        except (JoseError, ValueError) as error:
            log.debug("client assertion of %s refused: %r", client_id, error)
            raise InvalidClientError(description="The client assertion is not valid.") from error
        self.verify_claims(token.claims)
        return self.authenticate_client(client)

    def key_for(self, client):
        raise NotImplementedError

    def get_audiences(self):
        issuer = settings().server.issuer
        audiences = [issuer]
        for endpoint in _AUTHENTICATING_ENDPOINTS:
            try:
                audiences.append(public_url(endpoint))
            except BuildError:
                # An endpoint that is not served names no audience.
                continue
        return audiences

    def verify_claims(self, claims):
        super().verify_claims(claims)
        exp = claims["exp"]
        longest = settings().client_auth.assertion_max_lifetime
        if not isinstance(exp, int | float) or exp - time.time() > longest:
            raise InvalidClientError(description="The client assertion is valid for too long.")

    def validate_jti(self, claims, jti):
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            return False
        fresh = replay.first_use(
            db.session, "client_assertion", claims["sub"], jti, expires_at=int(claims["exp"]) + self.leeway
        )
        # Committed now, before the grant runs: a request that fails later must not free the jti.
        db.session.commit()
        return fresh


class PrivateKeyJWT(_Assertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"
    ALGORITHMS = ASYMMETRIC_ALGORITHMS

    def key_for(self, client):
        if client.jwks is not None:
            return KeySet.import_key_set(client.jwks)
        if not client.jwks_uri:
            raise InvalidClientError(description="The client has no keys registered.")
        uri = client.jwks_uri
        return lambda obj: _JWKS_CACHE.get(uri, obj.headers().get("kid"))


class ClientSecretJWT(_Assertion):
    CLIENT_AUTH_METHOD = "client_secret_jwt"
    ALGORITHMS = HMAC_ALGORITHMS

    def key_for(self, client):
        secret = client_secrets.unseal(
            client.secret_sealed, client_secrets.sealing_key(settings().server.secret_key)
        )
        if secret is None:
            raise InvalidClientError(description="The client needs a new secret.")
        return OctKey.import_key(secret)


class _RemoteKeySets:
    """Per-process cache of the JWK Sets fetched from clients' jwks_uri."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, KeySet]] = {}

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()

    def get(self, uri: str, kid: str | None) -> KeySet:
        now = time.monotonic()
        with self._lock:
            cached = self._sets.get(uri)
        ttl = settings().client_auth.jwks_cache_ttl
        if cached is not None:
            fetched_at, keyset = cached
            fresh = now - fetched_at <= ttl
            known = kid is None or any(key.kid == kid for key in keyset)
            if (fresh and known) or (fresh and now - fetched_at < REFETCH_INTERVAL):
                return keyset
        keyset = self._fetch(uri)
        with self._lock:
            self._sets[uri] = (now, keyset)
        return keyset

    @staticmethod
    def _fetch(uri: str) -> KeySet:
        try:
            response = current().outbound.get(uri, headers={"Accept": "application/json"})
        except OutboundError as error:
            log.info("jwks_uri %s could not be fetched: %s", uri, error)
            raise InvalidClientError(description="The client's jwks_uri could not be fetched.") from error
        try:
            if response.status != 200:
                raise ValueError(f"status {response.status}")
            document = json.loads(response.body)
            clients.check_jwks(document)
            return KeySet.import_key_set(document)
        except (ValueError, ClientDataError) as error:
            log.info("jwks_uri %s gave no usable JWK Set: %s", uri, error)
            raise InvalidClientError(description="The client's jwks_uri holds no usable JWK Set.") from error


_JWKS_CACHE = _RemoteKeySets()
