"""Single logout through the pages: which relying parties the signed-in page lists, the front-channel
logout iframes (OpenID Connect Front-Channel Logout 1.0) and their CSP, and every way a session ends
reaching the back-channel outbox (the HTTP delivery itself is replaced by a recorder here; it is tested
over real HTTP in tests/oauth/test_backchannel_logout.py and tests/flows/test_outbox.py)."""

from __future__ import annotations

import html
import re
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import SsoSession
from idp.runtime import of
from idp.services import logout as delivery
from idp.services import sessions

from ..helpers import Browser
from ..helpers import query
from ..oauth._flow import ISSUER
from ..oauth._flow import POST_LOGOUT_URI
from ..oauth._flow import sign_in_for_tokens
from ..oauth._flow import userinfo
from ..oauth._flow import verify_id_token

PORTAL_ORIGIN = "https://portal.example"
IFRAME = re.compile(r'<iframe src="([^"]+)" hidden></iframe>')


class Deliveries:
    """Records the logout tokens the outbox would POST; ``wait_for`` and ``count_after`` run one delivery
    pass first, as the background loop of a server process would (the test app runs none)."""

    def __init__(self, app):
        self.app = app
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, uri, token, *, client):
        with self._lock:
            self.sent.append((uri, token))

    def wait_for(self, count: int) -> list[str]:
        """The URIs of the first ``count`` deliveries, sorted; fails if fewer were made."""
        of(self.app).background.deliver_due()
        assert len(self.sent) >= count, self.sent
        return sorted(uri for uri, _ in self.sent[:count])

    def count_after(self) -> int:
        """How many deliveries there are after one more pass (none should be owed)."""
        of(self.app).background.deliver_due()
        return len(self.sent)


@pytest.fixture
def deliveries(app, monkeypatch):
    recorder = Deliveries(app)
    monkeypatch.setattr(delivery, "post", recorder.record)
    return recorder


def _rps(make_rp) -> dict:
    """Four relying parties; all but «Справочная» with front- and back-channel logout URIs."""

    def with_logout(name, front, back, **extra):
        return make_rp(name=name, frontchannel_logout_uri=front, backchannel_logout_uri=back, **extra)

    both = ["https://rp.example/cb", PORTAL_ORIGIN + "/cb"]
    portal, absent = PORTAL_ORIGIN + "/fc?a=1", PORTAL_ORIGIN + "/absent"
    return {
        "cabinet": with_logout("Личный кабинет", "https://rp.example/fc", "https://rp.example/bc"),
        "portal": with_logout("Портал услуг", portal, PORTAL_ORIGIN + "/bc", redirect_uris=both),
        "plain": make_rp(name="Справочная"),
        "absent": with_logout("Чужой сайт", absent, absent, redirect_uris=both),
    }


def _sign_in_everywhere(browser, account, rps) -> dict:
    """Tokens of cabinet, portal and plain, all in one session (single sign-on after the first)."""
    names = ("cabinet", "portal", "plain")
    return {name: sign_in_for_tokens(browser, account, rps[name])[0] for name in names}


def _sign_out_from_landing(browser):
    landing = browser.get("/")
    assert landing.status_code == 200
    return browser.submit("/logout/confirm", {}, page=landing)


def test_landing_page_lists_the_sites_of_this_session(app, browser, account, make_rp):
    rps = _rps(make_rp)
    landing = browser.sign_in(account["login"], account["password"])
    assert landing.status_code == 200 and "portals" not in landing.get_data(as_text=True)
    _sign_in_everywhere(browser, account, rps)
    # The same person signed in elsewhere to another site: not this session's.
    sign_in_for_tokens(Browser(app.test_client()), account, rps["absent"])

    page = browser.get("/").get_data(as_text=True)
    this_session = page[page.index('<ul class="portals">') :]
    listed = re.findall(r"<li>([^<]*)</li>", this_session[: this_session.index("</ul>")])
    assert listed == ["Личный кабинет", "Портал услуг", "Справочная"]
    assert "В этом сеансе вы вошли на сайты" in page
    # «Ваши сайты» lists every site the person uses, the other session's too, each linked to its
    # client_uri when it has one.
    yours = page[page.index('<ul class="sites">') :]
    yours = yours[: yours.index("</ul>")]
    assert re.findall(r"<li>(?:<a [^>]*>)?([^<]*)", yours) == [
        "Личный кабинет",
        "Портал услуг",
        "Справочная",
        "Чужой сайт",
    ]


def test_sign_out_from_the_landing_page_ends_every_site(browser, account, make_rp, deliveries):
    rps = _rps(make_rp)
    tokens = _sign_in_everywhere(browser, account, rps)
    done = _sign_out_from_landing(browser)
    assert done.status_code == 200 and "Вы вышли из личного кабинета" in done.get_data(as_text=True)
    assert browser.get("/").headers["Location"] == "/login"
    for name in ("cabinet", "portal", "plain"):
        assert userinfo(browser.client, tokens[name]["access_token"]).status_code == 401, name
    assert deliveries.wait_for(2) == [PORTAL_ORIGIN + "/bc", "https://rp.example/bc"]
    assert deliveries.count_after() == 2


def test_logged_out_page_frames_the_front_channel_uris(browser, account, make_rp, deliveries):
    rps = _rps(make_rp)
    tokens = _sign_in_everywhere(browser, account, rps)
    sid = verify_id_token(browser.client, tokens["cabinet"]["id_token"]).claims["sid"]

    done = _sign_out_from_landing(browser)
    frames = [html.unescape(src) for src in IFRAME.findall(done.get_data(as_text=True))]
    # Front-Channel Logout §2-§3: one hidden iframe per taking-part client with a URI, with iss and sid.
    assert sorted((url.split("?")[0], query(url)) for url in frames) == [
        (PORTAL_ORIGIN + "/fc", {"a": "1", "iss": ISSUER, "sid": sid}),
        ("https://rp.example/fc", {"iss": ISSUER, "sid": sid}),
    ]
    policy = done.headers["Content-Security-Policy"]
    assert f"frame-src {PORTAL_ORIGIN} https://rp.example" in policy
    assert "frame-ancestors 'none'" in policy and done.headers["X-Frame-Options"] == "DENY"
    assert "object-src 'none'" in policy and "base-uri 'none'" in policy  # issue 10, this page's too
    # Only that page may frame anything.
    assert "frame-src" not in browser.get("/login").headers["Content-Security-Policy"]


def test_rp_initiated_logout_shows_the_frames_before_going_back(browser, account, make_rp, deliveries):
    rps = _rps(make_rp)
    tokens = _sign_in_everywhere(browser, account, rps)
    response = browser.client.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["portal"]["id_token"],
            "post_logout_redirect_uri": POST_LOGOUT_URI,
            "state": "st",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and len(IFRAME.findall(page)) == 2
    back = POST_LOGOUT_URI + "?state=st"
    assert f'<meta http-equiv="refresh" content="2; url={back}">' in page
    assert f'<a class="button" href="{back}">Продолжить</a>' in page
    assert browser.get("/").headers["Location"] == "/login"


def test_without_front_channel_clients_rp_initiated_logout_redirects_at_once(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    response = browser.client.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": POST_LOGOUT_URI,
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == POST_LOGOUT_URI


def test_password_change_tells_the_sites_of_the_other_sessions(app, browser, account, make_rp, deliveries):
    rps = _rps(make_rp)
    elsewhere = Browser(app.test_client())
    sign_in_for_tokens(elsewhere, account, rps["portal"])
    sign_in_for_tokens(browser, account, rps["cabinet"])
    new = "новый пароль для кабинета"
    changed = browser.submit("/password/change", {"old": account["password"], "new": new, "repeat": new})
    assert changed.status_code == 302
    # The other session ended and its site is told; this session lives on, so its site is not.
    assert deliveries.wait_for(1) == [PORTAL_ORIGIN + "/bc"]
    assert deliveries.count_after() == 1


def test_a_session_found_timed_out_is_told(app, browser, account, make_rp, deliveries):
    rps = _rps(make_rp)
    sign_in_for_tokens(browser, account, rps["cabinet"])
    with app.app_context():
        db.session.execute(update(SsoSession).values(last_seen_at=SsoSession.last_seen_at - 7200))
        db.session.commit()
    assert browser.get("/").headers["Location"] == "/login"
    assert deliveries.wait_for(1) == ["https://rp.example/bc"]


def test_an_operator_signing_an_account_out_is_told(app, browser, account, make_rp, deliveries):
    rps = _rps(make_rp)
    sign_in_for_tokens(browser, account, rps["cabinet"])
    result = app.test_cli_runner().invoke(args=["accounts", "sign-out", account["login"]])
    assert result.exit_code == 0 and "1 session(s) ended" in result.output
    assert deliveries.wait_for(1) == ["https://rp.example/bc"]
    assert browser.get("/").headers["Location"] == "/login"


def test_a_rolled_back_end_tells_nobody(app, browser, account, make_rp, deliveries):
    rps = _rps(make_rp)
    sign_in_for_tokens(browser, account, rps["cabinet"])
    with app.app_context():
        sso = db.session.scalar(select(SsoSession))
        sessions.end_session(db.session, sso, now=int(time.time()), events=of(app).events)
        db.session.rollback()
        db.session.commit()
    assert deliveries.count_after() == 0
    assert browser.get("/").status_code == 200
