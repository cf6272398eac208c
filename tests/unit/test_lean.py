"""What the protocol endpoints skip (idp/lean.py): Flask-Limiter's hook may only be skipped where there
is no limit to check, and a request without a session cookie still gets an empty session."""

from __future__ import annotations

from flask import request
from flask import session

from idp.extensions import limiter
from idp.lean import UNLIMITED_ENDPOINTS


def test_the_endpoints_that_skip_the_limiter_have_no_limit(app):
    with app.test_request_context():
        manager = limiter.limit_manager
        assert list(manager.application_limits) == []
        for endpoint in UNLIMITED_ENDPOINTS:
            assert endpoint in app.view_functions, endpoint
            blueprint = endpoint.rpartition(".")[0]
            defaults, decorated = manager.resolve_limits(app, endpoint, blueprint)
            assert (list(defaults), list(decorated)) == ([], []), endpoint


def test_a_limited_endpoint_still_has_its_limit(app):
    # The check above can fail: the sign-in POST is limited.
    with app.test_request_context("/login", method="POST"):
        _, decorated = limiter.limit_manager.resolve_limits(app, "login.login", "login")
        assert list(decorated)


def test_the_limiter_hook_is_replaced_not_added(app):
    hooks = app.before_request_funcs[None]
    assert limiter._check_request_limit not in hooks
    assert sum(hook.__name__ == "check_where_limited" for hook in hooks) == 1


def test_no_cookie_an_empty_session_with_a_cookie_the_same_as_before(app):
    @app.route("/_lean_session")
    def _lean_session():
        if request.args.get("set"):
            session["n"] = 1
        return {"n": session.get("n"), "type": type(session._get_current_object()).__name__}

    client = app.test_client()
    assert client.get("/_lean_session").get_json() == {"n": None, "type": "SecureCookieSession"}
    client.get("/_lean_session?set=1")
    assert client.get("/_lean_session").get_json()["n"] == 1


def test_every_metadata_document_and_the_jwks_skip_the_limiter(app):
    # Discovery, both RFC 8414 addresses and the JWKS are what programs fetch at peak (the OpenAPI
    # description is not: it is read by developers).
    read_by_programs = {
        endpoint
        for endpoint, view in app.view_functions.items()
        if getattr(view, "idp_read_by_programs", False)
    }
    assert "oauth.authorization_server_metadata_of_path" in read_by_programs
    assert read_by_programs - {"oauth.openapi"} <= UNLIMITED_ENDPOINTS
