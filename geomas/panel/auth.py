"""Who may do what: users and API tokens, roles, signed session cookies, CSRF, login limits.

Roles are ordered viewer < operator < approver: viewers read, operators start and stop runs
and upload documents, approvers also promote and roll back. Users come from a YAML/JSON file
(`GEOMAS_PANEL_USERS_FILE` or the panel config's `users_file`)::

    users:
      - name: alice
        role: approver
        password_hash: "$argon2id$v=19$..."   # geomas panel hash-password
        tokens: ["<sha256 hex of the token>"]  # geomas panel new-token

Passwords are stored as argon2 hashes and API tokens as sha256 digests; neither is ever
logged. Browser sessions are cookies signed with the panel secret (itsdangerous) that carry
the user name and the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from geomas.config.base import validation_message
from geomas.errors import ConfigError

Role = Literal["viewer", "operator", "approver"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "approver")
USERS_ENV = "GEOMAS_PANEL_USERS_FILE"
SECRET_ENV = "GEOMAS_PANEL_SECRET"
MIN_SECRET_CHARS = 32


def role_allows(role: Role, needed: Role) -> bool:
    """Whether `role` is `needed` or above it."""
    return ROLES.index(role) >= ROLES.index(needed)


def token_digest(token: str) -> str:
    """The sha256 hex digest a token is stored as."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of `password` for the users file."""
    if not password:
        raise ConfigError("an empty password cannot be hashed; give a real one")
    return str(_hasher().hash(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches the argon2 hash (False for a malformed hash, too)."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(stored_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class User(BaseModel):
    """One panel user (the users file's `users[]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[\w.@+-]+$")
    role: Role
    password_hash: str | None = Field(
        default=None, description="argon2 hash (geomas panel hash-password); None: tokens only."
    )
    tokens: tuple[str, ...] = Field(
        default=(), description="sha256 hex digests of this user's API tokens."
    )

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("$argon2"):
            raise ValueError("is not an argon2 hash; make one with `geomas panel hash-password`"
                             " (never put a plain password in the users file)")
        return value

    @field_validator("tokens")
    @classmethod
    def _digests(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for digest in value:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError("each token must be the sha256 hex digest of the token (64 "
                                 "lower-case hex characters, `geomas panel new-token` prints "
                                 "it), not the token itself")
        return value


class UsersFile(BaseModel):
    """The users file."""

    model_config = ConfigDict(extra="forbid")

    users: list[User]


class Users:
    """The loaded users, looked up by name and by token digest."""

    def __init__(self, users: list[User]) -> None:
        if not users:
            raise ConfigError("the panel's users file lists no users; add at least one "
                              "(docs/panel.md, 'Users file')")
        self.by_name: dict[str, User] = {}
        self._by_token: dict[str, User] = {}
        for user in users:
            if user.name in self.by_name:
                raise ConfigError(f"users file: user {user.name!r} is listed twice")
            self.by_name[user.name] = user
            for digest in user.tokens:
                self._by_token[digest] = user

    def by_token(self, token: str) -> User | None:
        """The user whose token this is (compared as sha256 digests), or None."""
        digest = token_digest(token)
        for known, user in self._by_token.items():
            if hmac.compare_digest(known, digest):
                return user
        return None

    def login(self, name: str, password: str) -> User | None:
        """The user when `password` is right, else None (same work for unknown names)."""
        user = self.by_name.get(name)
        if user is None or user.password_hash is None:
            # hash anyway, so an unknown name takes as long as a wrong password
            verify_password(_DUMMY_HASH[0] or _dummy_hash(), password)
            return None
        return user if verify_password(user.password_hash, password) else None


_DUMMY_HASH: list[str] = [""]


def _dummy_hash() -> str:
    _DUMMY_HASH[0] = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH[0]


def load_users(path: Path) -> Users:
    """Read the users file (YAML or JSON).

    Raises:
        ConfigError: the file is missing, malformed, or a user entry is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"panel users file {path} does not exist; create it "
                          f"(docs/panel.md, 'Users file') or set {USERS_ENV}") from exc
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        parsed = UsersFile.model_validate(raw or {})
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"panel users file {path} cannot be parsed: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"panel users file {path} is invalid: {validation_message(exc)}"
                          ) from exc
    return Users(parsed.users)


class Sessions:
    """Signed session cookies: the user name and the session's CSRF token."""

    COOKIE = "geomas_session"
    LOGIN_CSRF_COOKIE = "geomas_login_csrf"

    def __init__(self, secret: str, max_age_s: int) -> None:
        from itsdangerous import URLSafeTimedSerializer

        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"{SECRET_ENV} is {len(secret)} characters; give at least "
                              f"{MIN_SECRET_CHARS} random ones (e.g. `python -c \"import "
                              "secrets; print(secrets.token_urlsafe(48))\"`)")
        self._signer = URLSafeTimedSerializer(secret, salt="geomas-panel-session")
        self.max_age_s = max_age_s

    def issue(self, user: str) -> tuple[str, str]:
        """A new session for `user`: (cookie value, CSRF token)."""
        csrf = secrets.token_urlsafe(32)
        return str(self._signer.dumps({"u": user, "c": csrf})), csrf

    def read(self, cookie: str) -> tuple[str, str] | None:
        """(user, CSRF token) of a valid, unexpired cookie, else None."""
        from itsdangerous import BadSignature

        try:
            data = self._signer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str):
            return None
        return data["u"], str(data.get("c", ""))


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens; False when either is missing."""
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


class LoginLimiter:
    """Failed logins per key (IP, user name) in a sliding window; over the limit -> refused."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until a blocked key may try again, or None when none is blocked."""
        now = time.monotonic()
        with self._lock:
            waits = [self.window_s - (now - times[0]) for key in keys
                     if len(times := self._recent(key, now)) >= self.max_failures]
        return max(waits) if waits else None

    def failed(self, *keys: str) -> None:
        """Count one failure against each key."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        """A successful login clears its keys' failures."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
