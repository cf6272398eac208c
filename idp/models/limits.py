"""Server-side state of the anti-abuse measures: captcha challenges and per-day counters."""

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import db


class CaptchaChallenge(db.Model):
    """One captcha image. Only a keyed digest of its answer is kept; ``used_at`` makes it single-use."""

    __tablename__ = "captcha_challenges"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    answer_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    used_at: Mapped[int | None] = mapped_column(Integer)


class DailyCounter(db.Model):
    """How often ``key`` (a login, a phone, an IP, the whole service) was counted on a calendar day."""

    __tablename__ = "daily_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
