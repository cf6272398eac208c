"""Demo relying parties of the provider: the foreign citizen's personal cabinet (``clients.cabinet``)
and a services portal (``clients.portal``), with their OpenID Connect glue in ``clients.oidc``.
``make demo`` runs both beside the provider; README "Demo" says where to click.

Must not import ``idp``: a relying party knows the provider only through OpenID Connect, as any other
would (tests/unit/test_layers.py checks it)."""
