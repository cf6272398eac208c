"""The authorization endpoint (RFC 6749 §4.1.1-§4.1.2.1, OIDC Core §3.1.2, RFC 9207): conformance
"Basic OP" oidcc-ensure-redirect-uri-*, oidcc-response-type-missing, oidcc-unsupported-*, oidcc-*-request*."""

import pytest
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent
from idp.models import AuthorizationCode
from idp.models import SsoSession
from idp.runtime import of
from idp.services.credentials import TOUCH_INTERVAL

from ..helpers import csrf_token
from ..helpers import sign_in_action
from ._flow import ISSUER
from ._flow import REDIRECT_URI
from ._flow import at_redirect_uri
from ._flow import auth_params
from ._flow import authorize
from ._flow import authorize_url
from ._flow import is_login_page
from ._flow import redeem
from ._flow import userinfo


def _no_redirect(response):
    assert response.status_code == 400, response.status_code
    assert "Location" not in response.headers
    body = response.get_data(as_text=True)
    # No way back to the relying party: no link, no meta refresh, no script redirect.
    assert 'href="https://' not in body and "http-equiv" not in body and "location." not in body.lower()


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://attacker.example/cb",
        "https://rp.example/cb/extra",
        "https://rp.example/cb?x=1",
        "https://RP.example/cb",
        "http://rp.example/cb",
    ],
)
def test_unregistered_redirect_uri_shows_error_page(client, rp, redirect_uri):
    params, _ = auth_params(rp, redirect_uri=redirect_uri)
    _no_redirect(client.get(authorize_url(params)))


def test_missing_redirect_uri_shows_error_page(client, rp):
    params, _ = auth_params(rp, redirect_uri=None)
    _no_redirect(client.get(authorize_url(params)))


@pytest.mark.parametrize("client_id", ["unknown-client", None, ""])
def test_unknown_client_shows_error_page(client, rp, client_id):
    params, _ = auth_params(rp, client_id=client_id)
    _no_redirect(client.get(authorize_url(params)))


def test_missing_response_type_redirects_with_error(client, rp):
    params, _ = auth_params(rp, response_type=None)
    result = at_redirect_uri(client.get(authorize_url(params)))
    assert result["error"] in ("invalid_request", "unsupported_response_type")
    assert result["state"] == params["state"]
    assert result["iss"] == ISSUER
    assert "code" not in result


def test_missing_response_type_with_bad_redirect_uri_does_not_redirect(client, rp):
    params, _ = auth_params(rp, response_type=None, redirect_uri="https://attacker.example/cb")
    _no_redirect(client.get(authorize_url(params)))


@pytest.mark.parametrize("response_type", ["token", "id_token", "id_token token", "code id_token", "none"])
def test_unsupported_response_type(client, rp, response_type):
    params, _ = auth_params(rp, response_type=response_type)
    result = at_redirect_uri(client.get(authorize_url(params)))
    assert result["error"] == "unsupported_response_type"
    assert result["state"] == params["state"]
    assert result["iss"] == ISSUER


def test_unsupported_response_type_with_bad_redirect_uri_does_not_redirect(client, rp):
    params, _ = auth_params(rp, response_type="token", redirect_uri="https://attacker.example/cb")
    _no_redirect(client.get(authorize_url(params)))


@pytest.mark.parametrize(
    "param, error",
    [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ],
)
def test_request_objects_refused(client, rp, param, error):
    value = "https://rp.example/request.jwt" if param == "request_uri" else "eyJhbGciOiJub25lIn0.e30."
    params, _ = auth_params(rp, **{param: value})
    result = at_redirect_uri(client.get(authorize_url(params)))
    assert result["error"] == error
    assert result["state"] == params["state"]
    assert result["iss"] == ISSUER


def test_client_not_allowed_the_code_flow(client, make_rp):
    machine = make_rp(grant_types=["client_credentials"], scope="patent")
    params, _ = auth_params(machine)
    result = at_redirect_uri(client.get(authorize_url(params)))
    assert result["error"] == "unauthorized_client" and result["iss"] == ISSUER


def test_unknown_parameters_are_ignored(browser, account, rp):
    done = authorize(browser, rp, account, foo="bar", claims_locales="xx", vendor_extension="1")
    result = done.result
    assert result["state"] == done.request["state"] and result["code"]
    assert redeem(browser.client, rp, done.code, done.verifier).status_code == 200


def test_authorization_by_post(browser, account, rp):
    done = authorize(browser, rp, account, method="POST")
    result = done.result
    assert result["state"] == done.request["state"]
    assert result["iss"] == ISSUER
    response = redeem(browser.client, rp, result["code"], done.verifier)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id_token"]


def test_login_page_then_code_with_state_and_iss(browser, account, rp):
    first = authorize(browser, rp)
    assert is_login_page(first.response)
    done = authorize(browser, rp, account, state="st-é ü/+&=")
    result = done.result
    assert result["state"] == "st-é ü/+&="
    assert result["iss"] == ISSUER
    assert set(result) == {"code", "state", "iss"}


def test_no_state_no_state_in_response(browser, account, rp):
    done = authorize(browser, rp, account, state=None)
    assert "state" not in done.result and done.result["code"]


def test_second_authorization_uses_the_session(browser, account, rp):
    authorize(browser, rp, account)
    again = authorize(browser, rp)
    assert again.result["code"]


def test_scope_not_allowed_for_client_is_dropped(browser, account, make_rp):
    narrow = make_rp(scope="openid profile")
    done = authorize(browser, narrow, account, scope="openid profile phone patent")
    response = redeem(browser.client, narrow, done.code, done.verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body["scope"].split()) == {"openid", "profile"}
    claims = userinfo(browser.client, body["access_token"]).get_json()
    assert "family_name" in claims
    assert "phone_number" not in claims and "patent_application_number" not in claims


def test_invalid_prompt_value(browser, account, rp):
    authorize(browser, rp, account)
    done = authorize(browser, rp, prompt="none login")
    assert done.result["error"] == "invalid_request" and done.result["iss"] == ISSUER


def test_second_registered_redirect_uri(browser, account, make_rp):
    two = make_rp(redirect_uris=[REDIRECT_URI, "https://rp.example/cb2"])
    done = authorize(browser, two, account, redirect_uri="https://rp.example/cb2")
    code = at_redirect_uri(done.response, "https://rp.example/cb2")["code"]
    response = redeem(browser.client, two, code, done.verifier, redirect_uri="https://rp.example/cb2")
    assert response.status_code == 200, response.get_json()


def _sso_row(app):
    with app.app_context():
        db.session.remove()
        return db.session.scalars(select(SsoSession)).one()


def test_what_the_session_lookup_writes_is_kept_when_no_code_is_issued(app, browser, account, rp, clock):
    """The authorization endpoint leaves a lookup that wrote nothing to the code's transaction (issue 12);
    one that wrote something (the last-seen time, a session's end) still commits it, code or not."""
    authorize(browser, rp, account)
    clock.now += TOUCH_INTERVAL + 1
    assert is_login_page(authorize(browser, rp, prompt="login").response)
    row = _sso_row(app)
    assert (row.last_seen_at, row.ended_at) == (clock.now, None)

    clock.now += of(app).settings.session.idle_timeout + 1
    assert is_login_page(authorize(browser, rp).response)
    assert _sso_row(app).ended_at == clock.now


@pytest.mark.parametrize("trusted", [True, False])
def test_a_sign_in_commits_with_its_code_or_alone_before_another_step(
    app, browser, account, make_rp, trusted
):
    """POST /login for an authorization request: the new session and its audit event commit with the code
    issued for them, one transaction (issue 12); when the request goes on to another step (a client that
    asks for consent) they still commit, without a code. The account is read in a transaction of its own
    that ends before the password check."""
    rp = make_rp(trusted=trusted)
    page = authorize(browser, rp).response
    commits: list[int] = []

    def committed(connection) -> None:
        commits.append(1)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", committed)
    try:
        response = browser.client.post(
            sign_in_action(page.get_data(as_text=True)),
            data={
                "csrf_token": csrf_token(page.get_data(as_text=True)),
                "login": account["login"],
                "password": account["password"],
            },
        )
    finally:
        event.remove(engine, "commit", committed)
    assert len(commits) == 2, commits
    assert _sso_row(app).ended_at is None
    with app.app_context():
        codes = db.session.scalar(select(func.count()).select_from(AuthorizationCode))
        events = db.session.scalars(select(AuditEvent.event)).all()
    assert "account.signed_in" in events
    if trusted:
        assert at_redirect_uri(response)["code"] and codes == 1
    else:
        assert response.status_code == 302 and "/consent" in response.headers["Location"] and codes == 0
