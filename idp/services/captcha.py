"""Image captcha of digits, rendered with Pillow (seed: «Код на изображении»).

A challenge lives on the server; the browser session holds only its id. Only a keyed digest of the
answer is stored, so a database reader cannot recover the digits or brute-force them offline. A
challenge is single-use (right or wrong) and expires after ``ttl`` seconds.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import secrets

from PIL import Image
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from PIL import ImageDraw
from PIL import ImageFilter
from PIL import ImageFont

from ..models import CaptchaChallenge
from .tokens import new_secret

# 1 and 7 look alike once rotated; leave them out.
DIGITS = "02345689"
LENGTH = 5
WIDTH, HEIGHT = 200, 70


@functools.lru_cache(maxsize=1)
def _fonts() -> tuple:
    return tuple(ImageFont.load_default(size=size) for size in (34, 40, 46))


def new_answer(length: int = LENGTH) -> str:
    return "".join(secrets.choice(DIGITS) for _ in range(length))


def answer_digest(answer: str, key: bytes, challenge_id: str) -> str:
    normalised = "".join(ch for ch in answer if ch.isdigit())[:16]
    return hmac.new(key, f"{challenge_id}:{normalised}".encode(), hashlib.sha256).hexdigest()


def answer_matches(answer: str, expected_digest: str, key: bytes, challenge_id: str) -> bool:
    return hmac.compare_digest(answer_digest(answer, key, challenge_id), expected_digest)


def render_png(answer: str) -> bytes:
    """Digits with slight rotation, crossing lines and speckles: readable by a person on a phone."""
    rnd = secrets.SystemRandom()
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


def issue_challenge(db: Session, *, key: bytes, now: int, ttl: int) -> tuple[str, bytes]:
    """Store a new challenge; return its id (for the browser session) and its PNG."""
    challenge_id = new_secret(24)
    answer = new_answer()
    db.add(
        CaptchaChallenge(
            id=challenge_id,
            answer_digest=answer_digest(answer, key, challenge_id),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return challenge_id, render_png(answer)


def redeem_challenge(db: Session, challenge_id, answer, *, key: bytes, now: int) -> bool:
    """Use up a challenge and say whether ``answer`` solved it. A used or expired one never passes."""
    if not isinstance(challenge_id, str) or not isinstance(answer, str):
        return False
    claimed = db.execute(
        update(CaptchaChallenge)
        .where(CaptchaChallenge.id == challenge_id, CaptchaChallenge.used_at.is_(None), CaptchaChallenge.expires_at > now)
        .values(used_at=now)
    ).rowcount
    if not claimed:
        return False
    expected = db.scalar(select(CaptchaChallenge.answer_digest).filter_by(id=challenge_id))
    return answer_matches(answer, expected, key, challenge_id)
