import base64
import io
import json
import secrets

from PIL import Image

from idp.services import captcha

KEYS = captcha.make_keys("k" * 32)
NOW = 2_000_000_000


def test_answer_is_digits_without_look_alikes():
    answers = {captcha.new_answer(secrets.token_bytes(32)) for _ in range(200)}
    assert all(len(a) == captcha.LENGTH and set(a) <= set(captcha.DIGITS) for a in answers)
    assert not set("".join(answers)) & {"1", "7"}
    assert len(answers) > 150


def test_every_digit_is_drawn_about_as_often():
    counts = dict.fromkeys(captcha.DIGITS, 0)
    for _ in range(800):
        for digit in captcha.new_answer(secrets.token_bytes(32)):
            counts[digit] += 1
    # 4000 draws of 8 symbols: 500 each expected; a biased mapping (e.g. byte % 10) would be far off.
    assert all(400 < count < 600 for count in counts.values()), counts


def test_a_challenge_reads_back_until_it_expires():
    token = captcha.issue(KEYS, now=NOW, ttl=300)
    challenge = captcha.read(KEYS, token, now=NOW + 299)
    assert challenge is not None and challenge.expires_at == NOW + 300
    assert captcha.read(KEYS, token, now=NOW + 300) is None
    assert captcha.read(captcha.make_keys("x" * 32), token, now=NOW) is None
    assert captcha.read(KEYS, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), now=NOW) is None
    for junk in (None, 5, "", "a.b", ["list"], "x" * 500):
        assert captcha.read(KEYS, junk, now=NOW) is None


def test_the_token_carries_only_an_id_and_the_expiry():
    token = captcha.issue(KEYS, now=NOW, ttl=300)
    payload = token.split(".")[0]
    challenge_id, expires_at = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert expires_at == NOW + 300 and len(challenge_id) >= 22
    # The digits come from the id under a key only the server holds: the same id under other keys
    # gives other digits, so the id alone tells nothing.
    challenge = captcha.read(KEYS, token, now=NOW)
    answers = {captcha.answer_of(captcha.make_keys(str(i) * 32), challenge) for i in range(10)}
    assert len(answers) > 5
    assert captcha.answer_of(KEYS, challenge) == captcha.answer_of(KEYS, captcha.read(KEYS, token, now=NOW))


def test_image_is_a_readable_size_png_and_the_same_for_one_challenge():
    png = captcha.render_png("02345", b"noise-1")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (captcha.WIDTH, captcha.HEIGHT)
    assert captcha.render_png("02345", b"noise-1") == png
    assert captcha.render_png("02345", b"noise-2") != png
