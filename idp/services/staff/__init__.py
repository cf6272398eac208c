"""Staff of the Migration Center: accounts with a role, a password and a mandatory TOTP second factor
(RFC 6238), and their own server-side sessions. One module per concern:

* ``members``: adding staff, their roles and state, signing in (username, password and code together,
  one error whatever was wrong, after exactly one bcrypt check, like the migrants' sign-in), and
  changing a password (the policy of ``services.credentials``, at least 12 characters);
* ``totp``: the second factor — sealing the shared secret, provisioning it, checking a code once;
* ``sessions``: the console's sessions (``services.credentials``' lifecycle, their own cookie).
"""
