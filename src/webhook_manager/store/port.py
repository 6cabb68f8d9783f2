"""The store port: the domain verbs every adapter offers. Only ``store/`` knows SQL."""

from __future__ import annotations

from typing import Protocol

from webhook_manager.model import Configuration, ConfigurationInput, LoginFailures, Session, User


class Store(Protocol):
    """What the API and the pipeline need from storage; every call is atomic."""

    async def migrate(self) -> list[int]:
        """Bring the schema up to date; return the versions applied now (none when current)."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable when it does not."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...

    # accounts

    async def create_user(
        self, client_code: str, username: str, password_hash: str, now_ms: int, *, only_if_first: bool = False
    ) -> User | None:
        """Create the client if new and a user of it; raise Conflict when the user exists.

        With ``only_if_first``, create nothing and return None when the store already holds any user.
        """
        ...

    async def find_user(self, client_code: str, username: str) -> User | None:
        """The user of that client with that name, or None."""
        ...

    async def login_failures(self, client_code: str, username: str) -> LoginFailures | None:
        """Consecutive failed logins of that pair, or None after none (or a success)."""
        ...

    async def record_login_failure(
        self, client_code: str, username: str, now_ms: int, restart_before_ms: int
    ) -> LoginFailures:
        """Count one more failure; a run whose last failure is older than ``restart_before_ms`` starts anew."""
        ...

    async def clear_login_failures(self, client_code: str, username: str) -> None:
        """Forget the failures of that pair (after a successful login)."""
        ...

    # sessions

    async def create_session(self, session: Session, *, purge_expired_before_ms: int) -> None:
        """Store a new session, and drop sessions that expired before the given time."""
        ...

    async def find_session(self, key_hash: bytes) -> Session | None:
        """The session with that key hash, expired or not, or None."""
        ...

    # configurations

    async def list_configurations(self, client_code: str) -> list[Configuration]:
        """The client's configurations, oldest first."""
        ...

    async def get_configuration(self, client_code: str, configuration_id: str) -> Configuration | None:
        """One configuration of the client, or None (also when it belongs to another client)."""
        ...

    async def create_configuration(self, configuration: Configuration) -> None:
        """Store a new configuration (its client is created when new)."""
        ...

    async def replace_configuration(
        self, client_code: str, configuration_id: str, new: ConfigurationInput, now_ms: int
    ) -> Configuration | None:
        """Replace every field of one of the client's configurations; None when there is no such one."""
        ...

    async def remove_configuration(self, client_code: str, configuration_id: str) -> bool:
        """Remove one of the client's configurations; False when there is no such one."""
        ...
