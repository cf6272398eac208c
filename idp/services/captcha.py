"""The captcha of digits (seed: «Код на изображении»): stateless challenges, single use on submit.

A challenge is a token signed with the server secret (its own salt): a random id and the expiry,
nothing else. Its digits are derived from the id with a key only the server holds, so the token shows
nothing of them, and any worker can draw the image (``render_png``) or speak the digits
(``captcha_audio``) from the token alone, without a database. The distortion is derived from the id
too: every request for one challenge gets the same image and the same sound, never a new version to
average against the others.

Single use is recorded when an answer is submitted, right or wrong: the challenge's id goes into
``captcha_uses`` with an INSERT that fails on the primary key when it is already there, so a replay
fails on every worker and host that shares the database. A row is needed only until its challenge
expires; ``idp purge`` deletes it after that.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import random
import secrets
import unicodedata
from dataclasses import dataclass

from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFilter
from PIL import ImageFont
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import CaptchaUse

# 1 and 7 look alike once rotated; leave them out. Eight symbols: a byte modulo 8 picks one evenly.
DIGITS = "02345689"
LENGTH = 5
WIDTH, HEIGHT = 200, 70
# Answers longer than this are cut before comparing; a real one has LENGTH digits.
MAX_ANSWER = 16


@dataclass(frozen=True)
class Keys:
    """What the server secret gives the captcha: the token signer and the key the digits come from."""

    signer: URLSafeSerializer
    digits_key: bytes


@dataclass(frozen=True)
class Challenge:
    id: str
    expires_at: int


def make_keys(secret_key: str) -> Keys:
    signer = URLSafeSerializer(
        secret_key, salt="idp.captcha.challenge", signer_kwargs={"digest_method": hashlib.sha256}
    )
    digits_key = hmac.new(secret_key.encode(), b"idp.captcha.digits", hashlib.sha256).digest()
    return Keys(signer=signer, digits_key=digits_key)


def issue(keys: Keys, *, now: int, ttl: int) -> str:
    """A new challenge, as the token the page carries."""
    return keys.signer.dumps([secrets.token_urlsafe(16), now + ttl])


def read(keys: Keys, token, *, now: int) -> Challenge | None:
    """The challenge in ``token`` if the signature holds and it has not expired; else None."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    try:
        challenge_id, expires_at = keys.signer.loads(token)
    except (BadSignature, TypeError, ValueError):
        return None
    if not isinstance(challenge_id, str) or type(expires_at) is not int or expires_at <= now:
        return None
    return Challenge(id=challenge_id, expires_at=expires_at)


def seed(keys: Keys, challenge: Challenge, purpose: str) -> bytes:
    return hmac.new(keys.digits_key, f"{purpose}:{challenge.id}".encode(), hashlib.sha256).digest()


def new_answer(seed: bytes, length: int = LENGTH) -> str:
    """The digits a challenge asks for, from its secret ``seed``."""
    return "".join(DIGITS[byte % len(DIGITS)] for byte in seed[:length])


def answer_of(keys: Keys, challenge: Challenge) -> str:
    return new_answer(seed(keys, challenge, "digits"))


def noise_seed(keys: Keys, challenge: Challenge) -> bytes:
    """Seeds the distortion of the image and the sound; unrelated to the digits' seed."""
    return seed(keys, challenge, "noise")


@functools.lru_cache(maxsize=1)
def _fonts() -> tuple:
    return tuple(ImageFont.load_default(size=size) for size in (34, 40, 46))


def render_png(answer: str, noise: bytes) -> bytes:
    """Digits with slight rotation, crossing lines and speckles: readable by a person on a phone.
    The same ``noise`` always gives the same image."""
    rnd = random.Random(noise)
    image = Image.new("RGB", (WIDTH, HEIGHT), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        start = (rnd.randint(0, WIDTH), rnd.randint(0, HEIGHT))
        end = (rnd.randint(0, WIDTH), rnd.randint(0, HEIGHT))
        draw.line([start, end], fill=(150, 150, 170), width=2)
    step = (WIDTH - 20) / len(answer)
    for index, digit in enumerate(answer):
        tile = Image.new("RGBA", (56, 64), (0, 0, 0, 0))
        ImageDraw.Draw(tile).text((28, 32), digit, font=rnd.choice(_fonts()), anchor="mm", fill=(40, 40, 80))
        tile = tile.rotate(rnd.uniform(-15, 15), resample=Image.Resampling.BICUBIC)
        image.paste(tile, (int(10 + index * step) - 8, rnd.randint(0, HEIGHT - 64)), tile)
    for _ in range(WIDTH * HEIGHT // 30):
        shade = rnd.randrange(120, 256)
        draw.point((rnd.randrange(WIDTH), rnd.randrange(HEIGHT)), fill=(shade, shade, shade))
    buffer = io.BytesIO()
    image.filter(ImageFilter.SMOOTH).save(buffer, "PNG")
    return buffer.getvalue()


def redeem(db: Session, keys: Keys, token, answer, *, now: int) -> bool:
    """Use up the challenge in ``token`` and say whether ``answer`` solved it. A forged, expired or
    already used challenge never passes; the caller commits."""
    challenge = read(keys, token, now=now)
    if challenge is None or not isinstance(answer, str):
        return False
    if not claim(db, challenge):
        return False
    # Any script's digits count (a phone keyboard may offer Persian or Arabic ones); spaces are ignored.
    digits = (unicodedata.decimal(ch, None) for ch in answer[:64])
    typed = "".join(str(digit) for digit in digits if digit is not None)[:MAX_ANSWER]
    return hmac.compare_digest(typed.encode(), answer_of(keys, challenge).encode())


def claim(db: Session, challenge: Challenge) -> bool:
    """Record the challenge as used; False if it already was (here or on another host)."""
    try:
        with db.begin_nested():
            db.add(CaptchaUse(id=challenge.id, expires_at=challenge.expires_at))
    except IntegrityError:
        return False
    return True
