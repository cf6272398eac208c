"""Pure application logic. Nothing here imports ``flask.request``, ``session``, ``g`` or ``current_app``:
callers pass the clock, the settings and the senders, so every function runs in a unit test."""
