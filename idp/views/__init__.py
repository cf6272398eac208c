"""One blueprint per user-visible flow; views parse input, call one service, render or redirect."""

from . import admin
from . import consent
from . import login
from . import logout
from . import oauth
from . import password
from . import recovery
from . import reset

BLUEPRINTS = (oauth.bp, login.bp, consent.bp, logout.bp, password.bp, reset.bp, recovery.bp)
BLUEPRINTS += (admin.bp,)
