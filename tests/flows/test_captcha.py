"""The captcha blueprint through the real app: the image and the spoken code of a page's challenge, solved
with the digits the server holds for it (derived here with the app's own key, not a fixed answer); no
database work to show them; per-IP throttling that refuses before any drawing or speaking; single use
when parallel requests race with one form."""

from __future__ import annotations

import io
import logging
import re
import threading
import wave
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from idp.extensions import db
from idp.models import CaptchaUse
from idp.runtime import of
from idp.services import captcha
from idp.services import captcha_audio

from ..helpers import captcha_token
from ..helpers import captcha_urls
from ..helpers import csrf_token
from ..helpers import outbox_reader
from ..helpers import redis_url
from ..helpers import settings_of
from ..live import http_session

PHONE = "+79161234567"
SENT = "/reset/sent"
CAPTCHA_WRONG = "Код на изображении введён неверно. Введите код с новой картинки."
TOO_MANY = "Слишком много попыток. Подождите и повторите."


@pytest.fixture
def outbox(app):
    with outbox_reader(settings_of(app).sms.file_path, app) as read:
        yield read


def answer_for(app, token: str) -> str:
    """The digits the server expects for ``token``: what the image shows and the voice says."""
    keys = captcha.make_keys(app.config["SECRET_KEY"])
    challenge = captcha.read(keys, token, now=of(app).clock())
    assert challenge is not None
    return captcha.answer_of(keys, challenge)


def reset_page(client, **kwargs) -> str:
    response = client.get("/reset/", **kwargs)
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture
def statements(app):
    """The SQL statements the app sends while the block runs: ``with statements() as seen: ...``."""
    from contextlib import contextmanager

    @contextmanager
    def watch():
        seen: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return watch


def used_challenges(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(CaptchaUse))


# --- the image and the sound of one challenge --------------------------------------------------------


def test_the_image_is_an_uncached_png_and_the_same_on_every_request(client):
    image, _ = captcha_urls(reset_page(client))
    first, again = client.get(image), client.get(image)
    assert first.status_code == 200 and first.mimetype == "image/png"
    assert first.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert "no-store" in first.headers["Cache-Control"]
    # The same picture each time: asking again gives no new distortion of the same digits to compare.
    assert again.data == first.data


def test_the_audio_solves_the_captcha(app, client, account, outbox):
    page = reset_page(client)
    _, audio = captcha_urls(page)
    assert audio.endswith("&lang=ru")
    response = client.get(audio)
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    assert "no-store" in response.headers["Cache-Control"]
    with wave.open(io.BytesIO(response.data)) as sound:
        assert (sound.getnchannels(), sound.getsampwidth(), sound.getframerate()) == (1, 2, 16000)
        seconds = sound.getnframes() / sound.getframerate()
    assert 0.5 * captcha.LENGTH <= seconds <= 2 * captcha.LENGTH, seconds
    # A person who listened types the digits the voice said, which are the image's digits.
    token = captcha_token(page)
    data = {
        "csrf_token": csrf_token(page),
        "login": account["login"],
        "phone": PHONE,
        "captcha_token": token,
        "captcha": " ".join(answer_for(app, token)),
    }
    response = client.post("/reset/", data=data)
    assert (response.status_code, response.headers.get("Location")) == (302, SENT)
    assert len(outbox()) == 1
    # The sound of a used challenge still plays (it is the same for everyone who has the page), but the
    # answer does not work twice.
    assert client.get(audio).status_code == 200
    assert CAPTCHA_WRONG in client.post("/reset/", data=data).get_data(as_text=True)


def test_the_audio_speaks_the_language_of_the_page(client):
    token = captcha_token(reset_page(client))
    russian = client.get("/captcha/audio.wav", query_string={"c": token, "lang": "ru"}).data
    english = client.get("/captcha/audio.wav", query_string={"c": token, "lang": "en"}).data
    assert russian != english
    # Without a language the page could give, the browser's own choice decides.
    chosen = client.get(
        "/captcha/audio.wav", query_string={"c": token, "lang": "zz"}, headers={"Accept-Language": "en"}
    ).data
    assert chosen == english


def test_the_image_solves_the_captcha_on_the_recovery_form_too(app, client, make_account):
    make_account(email="alisher@example.com")
    page = client.get("/recovery/").get_data(as_text=True)
    image, audio = captcha_urls(page)
    assert client.get(image).status_code == 200
    token = captcha_token(page)
    data = {
        "csrf_token": csrf_token(page),
        "identifier": "alisher@example.com",
        "surname": "Рахимов",
        "captcha_token": token,
        "captcha": answer_for(app, token),
    }
    response = client.post("/recovery/", data=data)
    assert (response.status_code, response.headers.get("Location")) == (302, "/recovery/sent")


def test_refresh_gives_a_new_challenge(app, client):
    page = reset_page(client)
    response = client.get("/captcha/new")
    assert response.status_code == 200 and response.is_json
    assert "no-store" in response.headers["Cache-Control"]
    token = response.get_json()["token"]
    assert token != captcha_token(page)
    assert client.get("/captcha/image.png", query_string={"c": token}).status_code == 200
    assert len(answer_for(app, token)) == captcha.LENGTH


@pytest.mark.parametrize(
    "token", ["", "garbage", "x" * 300, None], ids=["empty", "garbage", "huge", "missing"]
)
@pytest.mark.parametrize("path", ["/captcha/image.png", "/captcha/audio.wav"])
def test_no_valid_challenge_no_image_or_sound(client, path, token):
    response = client.get(path, query_string={} if token is None else {"c": token})
    assert response.status_code == 404 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "Код устарел. Нажмите «Обновить»."


def test_an_expired_challenge_shows_nothing(app, client, clock):
    image, audio = captcha_urls(reset_page(client))
    clock.now += settings_of(app).captcha.ttl
    assert client.get(image).status_code == 404
    assert client.get(audio).status_code == 404


def test_showing_a_challenge_touches_no_database(app, client, statements):
    page = reset_page(client)
    image, audio = captcha_urls(page)
    with statements() as seen:
        assert client.get(image).status_code == 200
        assert client.get(audio).status_code == 200
        assert client.get("/captcha/new").status_code == 200
    assert seen == []
    assert used_challenges(app) == 0


def test_an_answer_uses_up_its_challenge_right_or_wrong(app, client, account, statements):
    for answer in ("00000", None):
        page = reset_page(client)
        token = captcha_token(page)
        data = {
            "csrf_token": csrf_token(page),
            "login": account["login"],
            "phone": PHONE,
            "captcha_token": token,
            "captcha": answer or answer_for(app, token),
        }
        with statements() as seen:
            client.post("/reset/", data=data)
        assert any(s.lstrip().upper().startswith("INSERT INTO CAPTCHA_USES") for s in seen), seen
    assert used_challenges(app) == 2


@pytest.mark.config(captcha={"enabled": False})
def test_no_captcha_endpoints_when_it_is_off(client):
    assert client.get("/captcha/new").status_code == 404
    assert client.get("/captcha/image.png?c=x").status_code == 404


def test_a_missing_voice_answers_503_and_is_logged(client, monkeypatch, caplog):
    monkeypatch.setattr(captcha_audio, "PROGRAM", "/nonexistent/espeak-ng")
    _, audio = captcha_urls(reset_page(client))
    with caplog.at_level(logging.ERROR, logger="idp.views.captcha"):
        response = client.get(audio)
    assert response.status_code == 503 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == (
        "Прослушать код сейчас нельзя. Введите код с картинки или обратитесь в Миграционный центр."
    )
    assert "spoken captcha unavailable" in caplog.text


# --- throttling -------------------------------------------------------------------------------------


def _count_calls(monkeypatch, module, name) -> list:
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.config(captcha={"image_rate_limit": "3/minute"})
def test_images_are_throttled_per_ip_before_drawing(client, monkeypatch):
    drawn = _count_calls(monkeypatch, captcha, "render_png")
    image, _ = captcha_urls(reset_page(client))
    assert [client.get(image).status_code for _ in range(3)] == [200] * 3
    refused = client.get(image)
    assert refused.status_code == 429 and refused.mimetype == "text/plain"
    assert refused.get_data(as_text=True) == TOO_MANY
    assert int(refused.headers["Retry-After"]) > 0 and "no-store" in refused.headers["Cache-Control"]
    assert len(drawn) == 3
    # «Обновить» counts on its own; another address is not affected.
    assert client.get("/captcha/new").status_code == 200
    assert client.get(image, environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    assert len(drawn) == 4


@pytest.mark.config(captcha={"audio_rate_limit": "2/minute"})
def test_sounds_are_throttled_per_ip_before_speaking(client, monkeypatch):
    spoken = _count_calls(monkeypatch, captcha_audio, "render_wav")
    _, audio = captcha_urls(reset_page(client))
    assert [client.get(audio).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get(audio).get_data(as_text=True) == TOO_MANY
    assert len(spoken) == 2


@pytest.mark.config(captcha={"image_rate_limit": "2/minute"}, rate_limits={"storage_uri": redis_url(7)})
def test_the_throttle_counts_in_redis(app, client):
    # Production keeps the counters in Redis, shared by every worker and host.
    image, _ = captcha_urls(reset_page(client))
    assert [client.get(image).status_code for _ in range(3)] == [200, 200, 429]
    import redis

    keys = redis.Redis.from_url(redis_url(7)).keys("LIMITS:*captcha*")
    assert keys, "no captcha counter in Redis"


# --- single use under a race ------------------------------------------------------------------------

PARALLEL = 8


def test_parallel_posts_of_one_solved_form_pass_once(live_server, account):
    """The same solved form, sent by eight threads at once to the threaded server (each its own database
    connection): the INSERT on the challenge's id lets one through."""
    with http_session() as session:
        page = session.get(live_server.url + "/reset/", timeout=10).text
        token = captcha_token(page)
        data = {
            "csrf_token": csrf_token(page),
            "login": account["login"],
            "phone": PHONE,
            "captcha_token": token,
            "captcha": answer_for(live_server.app, token),
        }
        cookies = session.cookies.get_dict()
    barrier = threading.Barrier(PARALLEL, timeout=30)

    def one(_):
        with http_session() as other:
            other.cookies.update(cookies)
            barrier.wait()
            response = other.post(live_server.url + "/reset/", data=data, allow_redirects=False, timeout=60)
        if response.status_code == 302 and response.headers["Location"] == SENT:
            return "sent"
        if re.search(r'role="alert">' + re.escape(CAPTCHA_WRONG), response.text):
            return "wrong"
        return f"{response.status_code} {response.text[:200]}"

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        outcomes = list(pool.map(one, range(PARALLEL)))
    assert sorted(outcomes) == ["sent"] + ["wrong"] * (PARALLEL - 1), outcomes
    assert used_challenges(live_server.app) == 1
