"""The configuration of the admin console (docs/console.md): ``[admin]`` and its
``[[admin.users]]``.

Import these names from :mod:`rsbridge.config`, which holds the whole file's model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from rsbridge.config_base import ConfigModel, plain_name

AdminRole = Literal["viewer", "operator"]
"""``viewer`` sees everything; ``operator`` also retries, replays, pulls and runs checks."""

PASSWORD_HASH_PREFIX = "$argon2id$"  # noqa: S105 (a format prefix, not a password)


class AdminUserConfig(ConfigModel):
    """``[[admin.users]]``: one person who may sign in to the console."""

    name: str
    password_hash: SecretStr
    """An Argon2id hash in PHC form, as ``rsbridge admin hash-password`` prints it."""
    role: AdminRole = "viewer"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return plain_name(value)

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, value: SecretStr) -> SecretStr:
        # A plain password pasted here would be compared as a hash and never match:
        # refuse it, without echoing it.
        if not value.get_secret_value().startswith(PASSWORD_HASH_PREFIX):
            raise ValueError(
                "must be an Argon2id hash ($argon2id$...): make one with "
                "`rsbridge admin hash-password`, never the password itself"
            )
        return value


class AdminConfig(ConfigModel):
    """``[admin]``: the web console at ``/admin`` on the engine's listener."""

    enabled: bool = False
    users: list[AdminUserConfig] = Field(default_factory=list)
    session_hours: float = Field(8.0, gt=0, le=24 * 7)
    """A sign-in lasts this long (it ends sooner on sign-out)."""
    max_failed_sign_ins: int = Field(5, ge=1, le=100)
    """Failed sign-ins in a row after which the account is locked for ``lockout_minutes``."""
    lockout_minutes: float = Field(15.0, gt=0, le=24 * 60)
    allow_insecure_remote: bool = False
    """Serve the console to non-loopback callers over plain HTTP (not recommended)."""
    links: dict[str, str] = Field(default_factory=dict)
    """Extra links shown in the console's menu (label -> URL), e.g. the simulators."""

    @model_validator(mode="after")
    def _users(self) -> AdminConfig:
        names = [u.name for u in self.users]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"admin user name used more than once: {', '.join(twice)}")
        if self.enabled and not self.users:
            raise ValueError("admin.enabled needs at least one [[admin.users]] entry")
        return self

    @field_validator("links")
    @classmethod
    def _links(cls, value: dict[str, str]) -> dict[str, str]:
        for label, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"link {label!r}: only http:// and https:// URLs")
        return value

    def user(self, name: str) -> AdminUserConfig | None:
        """The user called ``name``, or None."""
        return next((u for u in self.users if u.name == name), None)
