"""Server-side state of the anti-abuse measures: answered captcha challenges and per-day counters."""

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model


class CaptchaUse(Model):
    """A captcha challenge that has been answered (right or wrong). The challenge itself travels signed
    with the page; this row only makes it single-use, and goes once the challenge has expired."""

    __tablename__ = "captcha_uses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False, index=True)


class DailyCounter(Model):
    """How often ``key`` (a login, a phone, an IP, the whole service) was counted on a calendar day."""

    __tablename__ = "daily_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
