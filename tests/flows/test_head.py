"""HEAD on every page answers as GET does, without the body (RFC 9110 §9.3.2): load balancers, uptime
checks and link checkers send it. Every GET route of the URL map is asked both ways, by a browser
signed in as a migrant and as an admin, so that pages answer their real content, not a redirect."""

from __future__ import annotations

from flask import url_for

from ..helpers import csrf_token


def _sample_values(account, rp, admin) -> dict:
    # A real object for every URL argument where one exists, so that the page itself is asked.
    return {
        "account_id": account["id"],
        "client_id": rp["client_id"],
        "staff_id": admin["id"],
        "filename": "idp.css",
        "pending_id": "no-such-request",
        "token": "no-such-token",
        # RFC 8414 §3.1: the issuer's path after the well-known part (404 while the issuer has none).
        "path": "idp",
    }


def test_every_get_route_answers_head_like_get(app, admin_client, account, rp):
    page = admin_client.get("/login")
    signed_in = admin_client.post(
        "/login",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "login": account["login"],
            "password": account["password"],
        },
    )
    assert signed_in.status_code == 302
    values = _sample_values(account, rp, admin_client.member)
    seen = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        missing = rule.arguments - values.keys()
        assert not missing, f"{rule.rule}: give this test a sample value for {sorted(missing)}"
        with app.test_request_context():
            url = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
        got = admin_client.get(url)
        head = admin_client.head(url)
        assert head.status_code == got.status_code, f"HEAD {url}: {head.status_code}, GET: {got.status_code}"
        assert head.mimetype == got.mimetype, url
        assert head.get_data() == b"", url
        seen[rule.rule] = got.status_code
    # The walk reached the pages themselves, not only sign-in redirects and errors.
    assert seen["/"] == seen["/admin/accounts/<int:account_id>"] == seen["/admin/clients/<client_id>"] == 200
    assert seen["/login"] == seen["/reset/"] == seen["/static/<path:filename>"] == 200
    assert sum(status == 200 for status in seen.values()) >= 20, seen
