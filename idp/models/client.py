"""OAuth 2.0 / OIDC relying parties. Implements authlib's ``ClientMixin`` over our own columns, because
the stock mixin keeps the client secret in plain text (RFC 9700 §2.5 / ASVS 2.10: store a digest)."""

import hmac

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749 import list_to_scope
from authlib.oauth2.rfc6749 import scope_to_list
from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import false
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..crypto import digest
from ..extensions import Model


class OAuth2Client(Model, ClientMixin):
    __tablename__ = "oauth2_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    # SHA-256 of a 256-bit random secret: a fast hash is right for secrets of that entropy, and bcrypt
    # would put ~250 ms on every token request.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    # client_secret_jwt (OIDC Core §9) verifies an HMAC keyed with the secret itself, so for such a client
    # the secret is also kept sealed (AES-256-GCM under a key from [server] secret_key); None otherwise.
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    client_id_issued_at: Mapped[int] = mapped_column(Integer, nullable=False)
    client_secret_expires_at: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    client_metadata: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    trusted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Registered by the client itself (RFC 7591), not by an admin (console, CLI): the consent page says
    # so, and such a client may not take the name of an admin-registered one (services.client_names).
    dynamically_registered: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )

    # -- metadata (RFC 7591 §2 names) --
    @property
    def client_name(self) -> str:
        return self.client_metadata.get("client_name") or self.client_id

    @property
    def redirect_uris(self) -> list[str]:
        return self.client_metadata.get("redirect_uris", [])

    @property
    def post_logout_redirect_uris(self) -> list[str]:
        return self.client_metadata.get("post_logout_redirect_uris", [])

    @property
    def client_uri(self) -> str | None:
        # RFC 7591 §2: the client's home page (the provider's landing page links to it)
        return self.client_metadata.get("client_uri")

    @property
    def backchannel_logout_uri(self) -> str | None:
        # OIDC Back-Channel Logout 1.0 §2.2
        return self.client_metadata.get("backchannel_logout_uri")

    @property
    def frontchannel_logout_uri(self) -> str | None:
        # OIDC Front-Channel Logout 1.0 §2
        return self.client_metadata.get("frontchannel_logout_uri")

    @property
    def grant_types(self) -> list[str]:
        return self.client_metadata.get("grant_types", [])

    @property
    def response_types(self) -> list[str]:
        return self.client_metadata.get("response_types", [])

    @property
    def scope(self) -> str:
        return self.client_metadata.get("scope", "")

    @property
    def token_endpoint_auth_method(self) -> str:
        return self.client_metadata.get("token_endpoint_auth_method", "client_secret_basic")

    @property
    def id_token_signed_response_alg(self) -> str:
        return self.client_metadata.get("id_token_signed_response_alg") or "RS256"

    @property
    def subject_type(self) -> str:
        # OIDC Core §8: public unless registered pairwise.
        return self.client_metadata.get("subject_type") or "public"

    @property
    def sector_identifier_uri(self) -> str | None:
        # OIDC Registration §2.
        return self.client_metadata.get("sector_identifier_uri")

    # -- RFC 7523 / OIDC Core §9 client authentication by JWT --
    @property
    def jwks(self) -> dict | None:
        return self.client_metadata.get("jwks")

    @property
    def jwks_uri(self) -> str | None:
        return self.client_metadata.get("jwks_uri")

    # -- RFC 9068 / RFC 8707: "opaque" (a random string) or "jwt"; the resource indicators it may ask for --
    @property
    def access_token_format(self) -> str:
        return self.client_metadata.get("access_token_format") or "opaque"

    @property
    def allowed_resources(self) -> list[str]:
        return self.client_metadata.get("allowed_resources", [])

    # -- RFC 9126 §6 and RFC 9449 §5.2 client metadata --
    @property
    def require_pushed_authorization_requests(self) -> bool:
        return bool(self.client_metadata.get("require_pushed_authorization_requests"))

    @property
    def dpop_bound_access_tokens(self) -> bool:
        return bool(self.client_metadata.get("dpop_bound_access_tokens"))

    def lifetime(self, name: str, default: int) -> int:
        """A token lifetime (``access_token_ttl``, ``id_token_ttl``, ``refresh_token_ttl``): the client's
        own when an admin set one, never longer than the configured ``default``."""
        own = self.client_metadata.get(name)
        return min(own, default) if isinstance(own, int) and own > 0 else default

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    # -- authlib ClientMixin --
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC Core §3.1.2.1 makes redirect_uri REQUIRED; no default keeps that rule for every client.
        return None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        allowed = set(scope_to_list(self.scope))
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 9700 §4.1.3: exact string matching, no patterns.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash or not isinstance(client_secret, str):
            return False
        return hmac.compare_digest(digest(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A confidential client with a secret may send it either way (RFC 6749 §2.3.1); a public client
        # authenticates with "none" only, which still lets it revoke its own tokens (RFC 7009 §2.1). A
        # client registered for a JWT assertion (private_key_jwt, client_secret_jwt) uses that one only:
        # the point of registering it is that a shared secret in a request is no longer accepted.
        if self.is_public:
            return method == "none"
        registered = self.token_endpoint_auth_method
        if registered in ("client_secret_basic", "client_secret_post"):
            return method in ("client_secret_basic", "client_secret_post")
        return method == registered

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def __repr__(self) -> str:
        return f"<OAuth2Client {self.client_id}>"
