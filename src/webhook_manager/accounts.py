"""Accounts, passwords and session keys (docs/api.md): the rules, apart from HTTP.

Passwords are kept as argon2id hashes. A session key is 48 random URL-safe characters; only its SHA-256 is
stored, which is enough for a key with 288 bits of entropy and lets every request find its session by
index. Failed logins are counted per (client, username) whether the user exists or not, so neither the
answer nor the block tells an attacker which users exist.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from webhook_manager.domain.errors import InvalidInput, Unauthorized
from webhook_manager.domain.model import Session, User
from webhook_manager.identity import IdentityTokens, TokenError
from webhook_manager.login_guard import LoginGuard, TooManyLogins
from webhook_manager.settings import Settings
from webhook_manager.store import Store

DEFAULT_SESSION_LENGTH_S = 3600
MAX_SESSION_LENGTH_S = 86_400
MIN_PASSWORD_LENGTH = 8
MAX_USERNAME_LENGTH = 255
EXPIRED_KEPT_MS = 86_400_000
BOOTSTRAP_CLIENT_CODE = "100"
BOOTSTRAP_USERNAME = "admin"
CLIENT_CODE_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")

_hasher = PasswordHasher()


class LoginError(Exception):
    """A login or session-key lookup refused, with Erply's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# Erply's codes (docs/api.md).
TOO_MANY_LOGINS = 1002
CREDENTIALS_MISSING = 1050
LOGIN_FAILED = 1051
USER_BLOCKED = 1052
SESSION_EXPIRED = 1054
SESSION_INVALID = 1055


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just created: the key is shown to the caller once and never stored."""

    user: User
    key: str
    session: Session


def hash_password(password: str) -> str:
    """A salted argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; never raises on a malformed hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@cache
def _decoy_hash() -> str:
    # Verified against when the user is unknown, so an unknown user costs as much time as a wrong password.
    return hash_password(secrets.token_urlsafe(16))


def new_session_key() -> str:
    """A fresh session key: 48 URL-safe characters."""
    return secrets.token_urlsafe(36)


def hash_session_key(key: str) -> bytes:
    """What the store keeps of a session key."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def check_client_code(value: str, field: str = "clientCode") -> str:
    """A client code: 1–64 characters of A-Z a-z 0-9 _ -"""
    if CLIENT_CODE_PATTERN.fullmatch(value) is None:
        raise InvalidInput(field, "must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    return value


def session_length(raw: str | int | None) -> int:
    """The session length asked for, in seconds: default 3600, cut to 86400; raise ValueError when bad."""
    if raw is None or raw == "":
        return DEFAULT_SESSION_LENGTH_S
    if isinstance(raw, bool) or not (isinstance(raw, int) or (raw.isascii() and raw.isdigit() and len(raw) <= 9)):
        raise ValueError("sessionLength must be a whole number of seconds")
    value = int(raw)
    if value < 1:
        raise ValueError("sessionLength must be a positive number of seconds")
    return min(value, MAX_SESSION_LENGTH_S)


async def verify_user(
    store: Store,
    settings: Settings,
    guard: LoginGuard,
    *,
    client_code: str,
    username: str,
    password: str,
    length_s: int,
    now_ms: int,
    address: str,
) -> NewSession:
    """Log a user in (Erply's verifyUser) for a caller at ``address``; raise :class:`LoginError` with 1050,
    1051, 1052, or 1002 when that address has too many logins under way."""
    if not username or not password:
        raise LoginError(CREDENTIALS_MISSING, "username or password missing")
    if CLIENT_CODE_PATTERN.fullmatch(client_code) is None or len(username) > MAX_USERNAME_LENGTH or "\x00" in username:
        raise LoginError(LOGIN_FAILED, "login failed")  # cannot exist; not worth a row of failures
    window_start = now_ms - settings.login_block_s * 1000
    # The pair's logins run one at a time, so each sees the failures of those before it: parallel tries
    # cannot get past the limit, and a correct one is never refused because of its twins. A refused try
    # is not a failure, so the block ends login_block_s after the failures that made it.
    async with guard.pair(client_code, username):
        if await store.login_failures(client_code, username, window_start) >= settings.login_max_failures:
            raise LoginError(USER_BLOCKED, "user temporarily blocked after repeated failed logins")
        user = await store.find_user(client_code, username)
        # An unknown user costs as much as a wrong password, so time does not tell who exists.
        password_hash = user.password_hash if user is not None else await asyncio.to_thread(_decoy_hash)
        try:
            matches = await guard.check(address, functools.partial(verify_password, password_hash, password))
        except TooManyLogins:
            raise LoginError(TOO_MANY_LOGINS, "too many logins under way from this address") from None
        if user is None or not matches:
            await store.record_login_failure(client_code, username, now_ms, forget_before_ms=window_start)
            raise LoginError(LOGIN_FAILED, "login failed")
        await store.clear_login_failures(client_code, username)
    key = new_session_key()
    session = Session(
        key_hash=hash_session_key(key),
        user_id=user.id,
        client_code=user.client_code,
        created_at_ms=now_ms,
        expires_at_ms=now_ms + length_s * 1000,
    )
    # Expired keys are kept a day, so that a client still hears "expired" (1054) rather than "invalid".
    await store.create_session(session, purge_expired_before_ms=now_ms - EXPIRED_KEPT_MS)
    return NewSession(user=user, key=key, session=session)


async def session_info(store: Store, key: str, now_ms: int) -> Session:
    """The live session of a key (Erply's getSessionKeyInfo); raise LoginError 1054 or 1055."""
    session = await store.find_session(hash_session_key(key)) if key else None
    if session is None:
        raise LoginError(SESSION_INVALID, "session key is invalid")
    if session.expires_at_ms <= now_ms:
        raise LoginError(SESSION_EXPIRED, "session key has expired")
    return session


async def authenticate(store: Store, client_code: str | None, key: str | None, now_ms: int) -> Session:
    """The session behind a request's ``clientCode`` and ``sessionKey`` headers; raise Unauthorized."""
    if not client_code:
        raise Unauthorized("the clientCode header is required")
    if not key:
        raise Unauthorized("the sessionKey header is required")
    session = await store.find_session(hash_session_key(key))
    if session is None:
        raise Unauthorized("the session key is not valid")
    if session.expires_at_ms <= now_ms:
        raise Unauthorized("the session key has expired")
    if not hmac.compare_digest(session.client_code.encode(), client_code.encode()):
        raise Unauthorized("the session key does not belong to this clientCode")
    return session


async def authenticate_token(
    store: Store, tokens: IdentityTokens, token: str, client_code: str | None, now_ms: int
) -> Session:
    """The session behind a request's ``jwt`` header (and its ``clientCode``, when it has one too); raise
    Unauthorized (TokenError) saying what is wrong with the token."""
    claims = tokens.check(token, now_ms // 1000)
    if client_code and not hmac.compare_digest(claims.client_code.encode(), client_code.encode()):
        raise TokenError("the jwt does not belong to this clientCode")
    session = await store.find_session(claims.session_key_hash)
    if session is None or session.client_code != claims.client_code:
        raise TokenError("the jwt's session no longer exists")
    if session.expires_at_ms <= now_ms:
        raise TokenError("the jwt's session has expired")
    return session


async def create_account(store: Store, client_code: str, username: str, password: str, now_ms: int) -> User:
    """Create a user (and its client when new); raise InvalidInput or Conflict."""
    check_client_code(client_code, "--client-code")
    if not username or len(username) > MAX_USERNAME_LENGTH or username != username.strip() or "\x00" in username:
        raise InvalidInput("--username", "must be 1 to 255 characters without surrounding spaces or NUL")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = await asyncio.to_thread(hash_password, password)
    user = await store.create_user(client_code, username, password_hash, now_ms)
    assert user is not None
    return user


async def bootstrap_account(store: Store, now_ms: int) -> tuple[User, str] | None:
    """When the store holds no user at all, create client 100 / admin with a random password."""
    if await store.has_users():
        return None
    password = secrets.token_urlsafe(18)
    password_hash = await asyncio.to_thread(hash_password, password)
    user = await store.create_user(BOOTSTRAP_CLIENT_CODE, BOOTSTRAP_USERNAME, password_hash, now_ms, only_if_first=True)
    return None if user is None else (user, password)
