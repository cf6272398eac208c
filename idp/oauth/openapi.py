"""An OpenAPI 3.1 description of every JSON endpoint a program calls: token, introspection, revocation,
UserInfo, dynamic registration and client configuration, device authorization, pushed authorization
requests, the metadata documents and JWKS. Served at ``/openapi.json``; ``tests/oauth/test_openapi.py``
validates real answers of each endpoint against it (the schemas are JSON Schema 2020-12, as OpenAPI 3.1
requires), so the description cannot drift from what the provider does.

Only what programs call is here: ``/authorize`` and the logout endpoint answer browsers with pages and
redirects, and are described by the OIDC specifications and the README.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..runtime import settings

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ref("OAuthError"), description)


def _form(properties: dict, required: list[str]) -> dict:
    return {
        "required": True,
        "content": {FORM: {"schema": {"type": "object", "properties": properties, "required": required}}},
    }


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
STRINGS = {"type": "array", "items": STRING}
USER_CODE_GROUP = "[BCDFGHJKLMNPQRSTVWXZ]{4}"
CLIENT_AUTH = [{"clientSecretBasic": []}, {"clientSecretPost": []}, {"privateKeyJwt": []}, {"none": []}]

SCHEMAS: dict = {
    "OAuthError": {
        "description": "RFC 6749 §5.2 (and RFC 6750 §3, RFC 7591 §3.2.2, RFC 8628 §3.5, RFC 9449 §7).",
        "type": "object",
        "required": ["error"],
        "properties": {"error": STRING, "error_description": STRING, "error_uri": STRING},
    },
    "TokenResponse": {
        "description": "RFC 6749 §5.1; id_token per OIDC Core §3.1.3.3.",
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": STRING,
            "token_type": {"type": "string", "enum": ["Bearer", "DPoP"]},
            "expires_in": INTEGER,
            "scope": STRING,
            "refresh_token": STRING,
            "id_token": STRING,
        },
    },
    "Introspection": {
        "description": 'RFC 7662 §2.2: an inactive token is {"active": false} and nothing else.',
        "type": "object",
        "required": ["active"],
        "properties": {
            "active": {"type": "boolean"},
            "scope": STRING,
            "client_id": STRING,
            "token_type": STRING,
            "exp": INTEGER,
            "iat": INTEGER,
            "nbf": INTEGER,
            "iss": STRING,
            "aud": {"oneOf": [STRING, STRINGS]},
            "sub": STRING,
            "jti": STRING,
            "cnf": {"type": "object"},
        },
        "if": {"properties": {"active": {"const": False}}},
        "then": {"maxProperties": 1},
    },
    "UserInfo": {
        "description": "OIDC Core §5.3.2: sub plus the claims of the granted scopes and of the claims "
        "parameter.",
        "type": "object",
        "required": ["sub"],
        "properties": {
            "sub": STRING,
            "name": STRING,
            "family_name": STRING,
            "given_name": STRING,
            "middle_name": STRING,
            "locale": STRING,
            "updated_at": INTEGER,
            "phone_number": STRING,
            "phone_number_verified": {"type": "boolean"},
            "email": STRING,
            "email_verified": {"type": "boolean"},
            "patent_application_number": STRING,
        },
        "additionalProperties": False,
    },
    "ClientMetadata": {
        "description": 'RFC 7591 §2 and OIDC Registration §2 client metadata (README "Dynamic client '
        'registration").',
        "type": "object",
        "properties": {
            "client_name": STRING,
            "redirect_uris": STRINGS,
            "post_logout_redirect_uris": STRINGS,
            "grant_types": STRINGS,
            "response_types": STRINGS,
            "scope": STRING,
            "token_endpoint_auth_method": STRING,
            "id_token_signed_response_alg": {"type": "string", "enum": ["RS256", "ES256", "EdDSA"]},
            "subject_type": {"type": "string", "enum": ["public", "pairwise"]},
            "sector_identifier_uri": STRING,
            "backchannel_logout_uri": STRING,
            "backchannel_logout_session_required": {"type": "boolean"},
            "frontchannel_logout_uri": STRING,
            "frontchannel_logout_session_required": {"type": "boolean"},
            "jwks": _ref("JWKS"),
            "jwks_uri": STRING,
        },
    },
    "ClientInformation": {
        "description": "RFC 7591 §3.2.1 / RFC 7592 §3: the metadata as registered, with the credentials.",
        "allOf": [
            _ref("ClientMetadata"),
            {
                "type": "object",
                "required": ["client_id"],
                "properties": {
                    "client_id": STRING,
                    "client_secret": STRING,
                    "client_id_issued_at": INTEGER,
                    "client_secret_expires_at": INTEGER,
                    "registration_access_token": STRING,
                    "registration_client_uri": STRING,
                },
            },
        ],
    },
    "DeviceAuthorization": {
        "description": "RFC 8628 §3.2.",
        "type": "object",
        "required": ["device_code", "user_code", "verification_uri", "expires_in"],
        "properties": {
            "device_code": STRING,
            "user_code": {"type": "string", "pattern": f"^{USER_CODE_GROUP}-{USER_CODE_GROUP}$"},
            "verification_uri": STRING,
            "verification_uri_complete": STRING,
            "expires_in": INTEGER,
            "interval": INTEGER,
        },
        "additionalProperties": False,
    },
    "PushedAuthorizationResponse": {
        "description": "RFC 9126 §2.2.",
        "type": "object",
        "required": ["request_uri", "expires_in"],
        "properties": {"request_uri": STRING, "expires_in": INTEGER},
    },
    "ProviderMetadata": {
        "description": "OIDC Discovery 1.0 §3 / RFC 8414 §2 (the same document at both addresses).",
        "type": "object",
        "required": [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ],
        "properties": {
            "issuer": STRING,
            "authorization_endpoint": STRING,
            "token_endpoint": STRING,
            "userinfo_endpoint": STRING,
            "jwks_uri": STRING,
            "registration_endpoint": STRING,
            "device_authorization_endpoint": STRING,
            "pushed_authorization_request_endpoint": STRING,
            "scopes_supported": STRINGS,
            "response_types_supported": STRINGS,
            "response_modes_supported": STRINGS,
            "grant_types_supported": STRINGS,
            "subject_types_supported": STRINGS,
            "id_token_signing_alg_values_supported": STRINGS,
            "acr_values_supported": STRINGS,
            "claims_parameter_supported": {"type": "boolean"},
            "prompt_values_supported": STRINGS,
        },
    },
    "JWK": {
        "description": "A public signing key (RFC 7517 §4; OKP per RFC 8037). Private members never appear.",
        "type": "object",
        "required": ["kty", "kid", "alg", "use"],
        "properties": {
            "kty": {"type": "string", "enum": ["RSA", "EC", "OKP"]},
            "kid": STRING,
            "alg": STRING,
            "use": {"const": "sig"},
            "n": STRING,
            "e": STRING,
            "crv": STRING,
            "x": STRING,
            "y": STRING,
            "d": False,
            "p": False,
            "q": False,
            "dp": False,
            "dq": False,
            "qi": False,
            "k": False,
        },
    },
    "JWKS": {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": _ref("JWK")}},
    },
}


def _token_path() -> dict:
    return {
        "post": {
            "summary": "Token endpoint (RFC 6749 §3.2, RFC 8628 §3.4)",
            "security": CLIENT_AUTH,
            "requestBody": _form(
                {
                    "grant_type": {
                        "type": "string",
                        "enum": [
                            "authorization_code",
                            "refresh_token",
                            "client_credentials",
                            "urn:ietf:params:oauth:grant-type:device_code",
                        ],
                    },
                    "code": STRING,
                    "redirect_uri": STRING,
                    "code_verifier": STRING,
                    "refresh_token": STRING,
                    "device_code": STRING,
                    "scope": STRING,
                    # RFC 8707 §2.2: repeatable (a form array is the parameter repeated).
                    "resource": STRINGS,
                    "client_id": STRING,
                },
                ["grant_type"],
            ),
            "responses": {
                "200": _json(_ref("TokenResponse"), "Tokens"),
                "400": _error("invalid_request, invalid_grant, authorization_pending, slow_down, …"),
                "401": _error("invalid_client"),
            },
        }
    }


def _origin(issuer: str) -> str:
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}"


def document() -> dict:
    issuer = settings().server.issuer
    form_token = _form({"token": STRING, "token_type_hint": STRING}, ["token"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "idp — OpenID Connect provider of the foreign citizen's personal cabinet",
            "version": "0.2.0",
            "description": 'The JSON endpoints of the provider (README "Endpoints").',
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": issuer}],
        "paths": {
            "/token": _token_path(),
            "/introspect": {
                "post": {
                    "summary": "Token introspection (RFC 7662); confidential clients, their own tokens",
                    "security": CLIENT_AUTH[:3],
                    "requestBody": form_token,
                    "responses": {
                        "200": _json(_ref("Introspection"), "The token's state"),
                        "401": _error("invalid_client"),
                    },
                }
            },
            "/revoke": {
                "post": {
                    "summary": "Token revocation (RFC 7009)",
                    "security": CLIENT_AUTH,
                    "requestBody": form_token,
                    "responses": {
                        "200": {"description": "Revoked, or was not a token of this client (RFC 7009 §2.2)"},
                        "401": _error("invalid_client"),
                    },
                }
            },
            "/userinfo": {
                op: {
                    "summary": "UserInfo (OIDC Core §5.3); the token in the header or a form body "
                    "(RFC 6750 §2.2)",
                    "security": [{"bearer": []}, {"dpop": []}],
                    "responses": {
                        "200": _json(_ref("UserInfo"), "Claims"),
                        "400": _error("invalid_request"),
                        "401": _error("invalid_token (with WWW-Authenticate)"),
                        "403": _error("insufficient_scope"),
                    },
                }
                for op in ("get", "post")
            },
            "/register": {
                "post": {
                    "summary": "Dynamic client registration (RFC 7591), with an initial access token",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("ClientMetadata")}}},
                    "responses": {
                        "201": _json(_ref("ClientInformation"), "Registered"),
                        "400": _error("invalid_client_metadata, invalid_redirect_uri"),
                        "401": _error("invalid_token"),
                    },
                }
            },
            "/register/{client_id}": {
                "parameters": [{"name": "client_id", "in": "path", "required": True, "schema": STRING}],
                "get": {
                    "summary": "Read a registration (RFC 7592 §2.1)",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _json(_ref("ClientInformation"), "The registration"),
                        "401": _error("invalid_token"),
                    },
                },
                "put": {
                    "summary": "Replace a registration (RFC 7592 §2.2)",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("ClientMetadata")}}},
                    "responses": {
                        "200": _json(_ref("ClientInformation"), "The new registration"),
                        "400": _error("invalid_client_metadata"),
                        "401": _error("invalid_token"),
                    },
                },
                "delete": {
                    "summary": "Delete a registration (RFC 7592 §2.3)",
                    "security": [{"bearer": []}],
                    "responses": {"204": {"description": "Deleted"}, "401": _error("invalid_token")},
                },
            },
            "/device/authorize": {
                "post": {
                    "summary": "Device authorization (RFC 8628 §3.1)",
                    "security": CLIENT_AUTH,
                    # RFC 8707 §2: resource is repeatable; bound to the device code.
                    "requestBody": _form({"client_id": STRING, "scope": STRING, "resource": STRINGS}, []),
                    "responses": {
                        "200": _json(_ref("DeviceAuthorization"), "Codes for the device and the person"),
                        "400": _error("invalid_request, invalid_scope, invalid_target, unauthorized_client"),
                        "401": _error("invalid_client"),
                    },
                }
            },
            "/par": {
                "post": {
                    "summary": "Pushed authorization request (RFC 9126 §2)",
                    "security": CLIENT_AUTH,
                    "requestBody": _form(
                        {
                            "client_id": STRING,
                            "response_type": STRING,
                            "redirect_uri": STRING,
                            # RFC 9449 §10: binds the code to a DPoP key (so does a DPoP header, §10.1).
                            "dpop_jkt": STRING,
                            # RFC 8707 §2: repeatable; bound to the code.
                            "resource": STRINGS,
                        },
                        [],
                    ),
                    "responses": {
                        "201": _json(_ref("PushedAuthorizationResponse"), "A single-use request_uri"),
                        "400": _error(
                            "invalid_request, invalid_target, invalid_dpop_proof, use_dpop_nonce, …"
                        ),
                        "401": _error("invalid_client"),
                    },
                }
            },
            "/.well-known/openid-configuration": {
                "get": {
                    "summary": "OpenID Provider metadata (OIDC Discovery 1.0 §4)",
                    "responses": {"200": _json(_ref("ProviderMetadata"), "Metadata")},
                }
            },
            "/.well-known/oauth-authorization-server": {
                "get": {
                    "summary": "Authorization server metadata (RFC 8414 §3)",
                    "responses": {"200": _json(_ref("ProviderMetadata"), "Metadata")},
                }
            },
            "/.well-known/oauth-authorization-server/{issuer_path}": {
                # RFC 8414 §3.1: for an issuer with a path, at the host's root with the path appended.
                "servers": [{"url": _origin(issuer)}],
                "parameters": [
                    {
                        "name": "issuer_path",
                        "in": "path",
                        "required": True,
                        "description": "The issuer's path without its leading slash (idp for https://host/idp)",
                        "schema": STRING,
                    }
                ],
                "get": {
                    "summary": "Authorization server metadata of an issuer with a path (RFC 8414 §3.1)",
                    "responses": {
                        "200": _json(_ref("ProviderMetadata"), "Metadata"),
                        "404": {"description": "Not this issuer's path, or an issuer without one"},
                    },
                },
            },
            "/jwks.json": {
                "get": {
                    "summary": "The public signing keys (RFC 7517)",
                    "responses": {"200": _json(_ref("JWKS"), "JWK Set")},
                }
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "clientSecretBasic": {"type": "http", "scheme": "basic"},
                "clientSecretPost": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "client_secret",
                    "description": "client_id and client_secret in the form body (RFC 6749 §2.3.1)",
                },
                "privateKeyJwt": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "client_assertion",
                    "description": "private_key_jwt or client_secret_jwt (RFC 7523 §2.2) in the form body",
                },
                "none": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "client_id",
                    "description": "a public client: client_id in the form body, no secret",
                },
                "bearer": {"type": "http", "scheme": "bearer"},
                "dpop": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "DPoP",
                    "description": "Authorization: DPoP <token> with a DPoP proof (RFC 9449)",
                },
            },
        },
    }
