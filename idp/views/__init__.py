"""One blueprint per user-visible flow; views parse input, call one service, commit, render or redirect.

A flow's blueprint, URL prefix, template folder and test module share its name (``reset``: /reset/,
templates/reset/, tests/flows/test_reset.py). Shared pieces have modules of their own: ``sso`` (the
browser's session), ``selfservice`` (what the reset, recovery and password pages share), ``captcha``
(the challenge's image and sound), ``locale``, ``errors`` (the last-resort handlers). Words shown for
errors come from ``idp.messages``.

May import: anything below (Flask and its extensions, ``idp.runtime``, ``idp.oauth``, services, models,
``idp.messages``). Nothing imports the views but ``create_app``.
"""

from . import account
from . import admin
from . import captcha
from . import consent
from . import device
from . import health
from . import locale
from . import login
from . import logout
from . import oauth
from . import password
from . import recovery
from . import reset

BLUEPRINTS = (
    oauth.bp,
    login.bp,
    consent.bp,
    device.bp,
    logout.bp,
    password.bp,
    account.bp,
    reset.bp,
    recovery.bp,
    captcha.bp,
    admin.bp,
    health.bp,
    locale.bp,
)
