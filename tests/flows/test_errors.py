"""An unexpected error: a plain page for the user, a traceback in the log, and no secret from the URL."""

from __future__ import annotations

import logging

from idp.services.selfservice import recovery


def test_unexpected_error_is_logged_without_the_secret_in_the_path(client, monkeypatch, caplog):
    token = "Zt3kq9-secret-link-token-0123456789abcdefghij"

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(recovery, "check_link", broken)
    with caplog.at_level(logging.ERROR, logger="idp.errors"):
        response = client.get(f"/recovery/link/{token}")
    assert response.status_code == 500
    assert "Внутренняя ошибка. Попробуйте позже." in response.get_data(as_text=True)
    assert "database went away" not in response.get_data(as_text=True)
    [record] = [r for r in caplog.records if r.name == "idp.errors"]
    assert record.getMessage() == "unhandled error on GET /recovery/link/<token>" and record.exc_info
    assert token not in caplog.text
