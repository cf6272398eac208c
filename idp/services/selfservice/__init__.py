"""Self-service flows: what a person does alone to get back into their account. One module per flow,
each of the same shape (as Ory Kratos keeps its flows):

* a stored row with ``state``, ``expires_at`` and ``attempts`` (``models.password``, ``models.reset``,
  ``models.recovery``), and the state diagram in the docstring of the flow's model and module;
* one function per transition;
* one transaction rule: the functions flush, the caller (a view or a command) commits. Nothing is sent
  inside a request: a transition that sends a message writes it to the durable outbox, whose handler
  makes the secret (password, code, link) at sending time, commits it, and sends
  (``sending.send_made``: a timeout keeps it valid, a refusal gives the allowance back).

Modules:

* ``password``: the forced password change after a temporary password (migrants and staff), and a
  change at will;
* ``reset``: a new temporary password by SMS («не могу войти»);
* ``recovery``: access recovery by phone, e-mail, SNILS or patent number with the surname;
* ``limits``: the daily limits and the SMS allowance the reset and the recovery share ([limits]);
* ``sending``: how the outbox sends what the reset and the recovery made (unknown is not failed).

May import: models, ``idp.config``, ``idp.errors``, ``idp.events``, other services. Must not import:
Flask, flask_babel, views, oauth. Message texts are composed by the caller, in the user's language.
"""
