"""Who may do what: partners, controller logins, operators, API tokens.

Kept libraries only: argon2-cffi for operator passwords, ``cryptography``'s Fernet for
controller passwords kept at rest, ``secrets`` and ``hmac.compare_digest`` for tokens.
"""
