import io

from PIL import Image

from idp.services import captcha

KEY = b"k" * 32


def test_answer_is_digits_without_look_alikes():
    answers = {captcha.new_answer() for _ in range(200)}
    assert all(len(a) == captcha.LENGTH and set(a) <= set(captcha.DIGITS) for a in answers)
    assert not set("".join(answers)) & {"1", "7"}
    assert len(answers) > 150


def test_digest_binds_answer_to_challenge_and_key():
    stored = captcha.answer_digest("02345", KEY, "c1")
    assert captcha.answer_matches("02345", stored, KEY, "c1")
    assert captcha.answer_matches(" 023 45 ", stored, KEY, "c1")
    assert not captcha.answer_matches("02346", stored, KEY, "c1")
    assert not captcha.answer_matches("02345", stored, KEY, "c2")
    assert not captcha.answer_matches("02345", stored, b"x" * 32, "c1")
    assert "02345" not in stored


def test_render_png_is_a_readable_size_image():
    png = captcha.render_png("02345")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (captcha.WIDTH, captcha.HEIGHT)
    assert captcha.render_png("02345") != png
