"""Identity tokens (docs/api.md, "Identity tokens"): JWTs this service signs for a session, as Erply's
``identityToken``, and accepts in a ``jwt`` header in place of ``clientCode`` and ``sessionKey``.

A token is HS256-signed with the service's key (the ``identity_token_secret`` setting, or one made at first
start and kept in the store, so every process of a store signs alike). It names its session by the SHA-256 the
store keeps of the session key, so a token dies with its session, and it expires with it. Only HS256 is
accepted: a token that says ``alg: none`` or another algorithm is refused, whatever its signature.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

import jwt

from webhook_manager.domain.errors import Unauthorized
from webhook_manager.domain.model import Session, User
from webhook_manager.settings import Settings
from webhook_manager.store import Store

ALGORITHM = "HS256"
ISSUER = "webhook-manager"
KEY_NAME = "identity-token-key"


class TokenError(Unauthorized):
    """A ``jwt`` that cannot be used: malformed, signed with another key, expired, or of a session gone."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says."""

    client_code: str
    user_id: int
    username: str
    session_key_hash: bytes
    expires_at_s: int


class IdentityTokens:
    """Signs and checks the identity tokens of one service."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    async def of(cls, settings: Settings, store: Store) -> IdentityTokens:
        """The service's tokens: with the key of the settings, else the one kept in the store (made once)."""
        if settings.identity_token_secret is not None:
            return cls(settings.identity_token_secret.get_secret_value().encode())
        key = await store.service_secret(KEY_NAME, secrets.token_urlsafe(32))
        return cls(key.encode())

    def issue(self, user: User, session: Session) -> str:
        """A token for ``session`` of ``user``, expiring with the session."""
        claims = {
            "iss": ISSUER,
            "sub": str(user.id),
            "clientCode": session.client_code,
            "userName": user.username,
            "sid": base64.urlsafe_b64encode(session.key_hash).decode().rstrip("="),
            "iat": session.created_at_ms // 1000,
            "exp": session.expires_at_ms // 1000,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def check(self, token: str, now_s: int) -> TokenClaims:
        """The claims of a token signed here and not expired at ``now_s``; raise TokenError saying why not."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                # exp is checked below, on the service's clock; iat is not checked, so that the clocks of several
                # processes need not agree to the second
                options={"require": ["exp", "iat", "sub", "sid", "iss"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise TokenError("the jwt is not signed by this service") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(f"the jwt is not signed with {ALGORITHM}") from None
        except jwt.PyJWTError:
            raise TokenError("the jwt is malformed") from None
        try:
            parsed = TokenClaims(
                client_code=str(claims["clientCode"]),
                user_id=int(claims["sub"]),
                username=str(claims.get("userName", "")),
                session_key_hash=base64.urlsafe_b64decode(str(claims["sid"]) + "=="),
                expires_at_s=int(claims["exp"]),
            )
        except (KeyError, ValueError, TypeError):
            raise TokenError("the jwt is malformed") from None
        if parsed.expires_at_s <= now_s:  # checked here, not by PyJWT, so the fake clocks of tests apply
            raise TokenError("the jwt has expired")
        return parsed
