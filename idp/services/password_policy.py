"""What a new password must not be, for migrants and staff alike (NIST SP 800-63B-4 §3.1.1.2, OWASP ASVS
5.0 6.2.11-6.2.12): the one entry point both policies call after their own length checks.

Reasons, each a key into the views' messages:

* ``personal``: holds the person's login, surname, given name, patronymic, phone or birth year
  (``context_words``);
* ``service``: holds a word of this service («патент», «мосру», «госуслуги»...);
* ``pattern``: repeated or sequential characters ("aaaaaaaa", "12345678");
* ``common``: on the offline blocklist of breached and common passwords, keyboard walks and common words
  with a little decoration (``blocklist``).
"""

from __future__ import annotations

from ..models import Account
from ..models import StaffUser
from . import blocklist
from . import context_words
from .context_words import PolicyContext

__all__ = ["REASONS", "PolicyContext", "account_context", "check", "staff_context"]

# What ``check`` may answer, in the order it looks.
REASONS = ("personal", "service", "pattern", "common")


def account_context(account: Account) -> PolicyContext:
    # Accounts hold no birth date yet: PolicyContext.birth_year is the hook for when they do.
    return PolicyContext(
        login=account.login,
        names=tuple(name for name in (account.surname, account.given_name, account.middle_name) if name),
        phone=account.phone,
    )


def staff_context(user: StaffUser) -> PolicyContext:
    return PolicyContext(login=user.username, names=(user.full_name,))


def check(password: str, context: PolicyContext) -> str | None:
    """The reason ``password`` is refused, or None. The person's own words come first: their message
    tells them more than «too common» would."""
    return context_words.find(password, context) or blocklist.check(password)
