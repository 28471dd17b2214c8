"""CSRF defences for the staff page: a signed double-submit token before login, and request-origin checks.

Before login there is no session to keep a token in, and a login form that accepts any POST lets another site
sign a carer's browser in to an account of its choosing (login CSRF). So ``GET /login`` sets a random nonce in
an HttpOnly, SameSite=Strict cookie and puts an HMAC-signed, timestamped copy of it in the form: a POST must
bring both, matching, and another site can neither read nor set the cookie. After login the token lives in the
server-side session (``sessions.py``). Every comparison refuses an empty token: an empty header equal to an
empty expected value once let a cookie without a token pause the kiosk.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import Request
from itsdangerous import BadData, URLSafeTimedSerializer

logger = logging.getLogger(__name__)

NONCE_MAX_CHARS = 64


def same_token(sent: str | None, expected: str | None) -> bool:
    """Constant-time equality of two non-empty tokens (bytes, so odd characters cannot raise)."""
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another origin: Sec-Fetch-Site where it is sent
    (current browsers), else the Origin header (``null`` included: an opaque origin is not this page).

    A client that sends neither (curl, a script) still needs the token.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")


class LoginFormTokens:
    """The signed double-submit pair for the login form: (cookie nonce, form token)."""

    def __init__(self, secret_key: bytes, max_age_s: float = 3600.0) -> None:
        self.max_age_s = max_age_s
        self._serializer = URLSafeTimedSerializer(secret_key, salt="kiosk-staff-login-form")

    def issue(self, nonce: str | None = None) -> tuple[str, str]:
        """A nonce for the cookie (the one the browser has, when sane) and the signed token for the form."""
        if not nonce or len(nonce) > NONCE_MAX_CHARS or not nonce.isascii():
            nonce = secrets.token_urlsafe(24)
        return nonce, self._serializer.dumps(nonce)

    def valid(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        try:
            signed = self._serializer.loads(token, max_age=self.max_age_s)
        except BadData:
            return False
        return isinstance(signed, str) and same_token(signed, nonce)
