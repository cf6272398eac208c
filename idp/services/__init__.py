"""Pure application logic: the rules. Callers (views, CLI commands, authlib's hooks in ``idp.oauth``)
pass the database session, the time, the settings sections and the adapters (senders, the event bus),
so every function runs in a unit test. Services flush; the caller commits.

May import: models, ``idp.config`` (the settings dataclasses), ``idp.errors``, ``idp.events``,
``idp.crypto``, other services, and libraries without request state. Must not import: Flask or its
extensions (flask, flask_babel, flask_wtf, …), ``idp.extensions``, ``idp.runtime``, ``idp.messages``,
``idp.oauth``, ``idp.views``, ``idp.cli`` (tests/unit/test_layers.py checks it).
"""
