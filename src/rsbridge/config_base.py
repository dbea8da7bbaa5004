"""What every section of the configuration is built from: the strict, frozen model,
secrets given as ``{ env = ... }`` or ``{ file = ... }``, plain names.

Shared by :mod:`rsbridge.config` and :mod:`rsbridge.config_actions`; import the
configuration's names from :mod:`rsbridge.config`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rsbridge.errors import ConfigurationError

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def resolve_secret(value: object, *, where: str) -> object:
    """Turn ``{env = "NAME"}`` / ``{file = "path"}`` into the secret's text.

    Anything else is returned unchanged for the model to validate. Errors name the
    variable or file, never a value.
    """
    if not isinstance(value, Mapping):
        return value
    if set(value) == {"env"}:
        name = str(value["env"])
        if name not in os.environ:
            raise ConfigurationError(f"{where}: environment variable {name} is not set")
        return os.environ[name]
    if set(value) == {"file"}:
        path = Path(str(value["file"]))
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"{where}: cannot read secret file {path}: {exc.strerror}"
            ) from None
    raise ConfigurationError(f"{where}: a secret is a string, {{ env = ... }} or {{ file = ... }}")


def anchor_file(value: object, base: Path | None) -> object:
    """``{file = "relative"}`` made relative to the configuration file's directory."""
    if base is not None and isinstance(value, Mapping) and set(value) == {"file"}:
        return {"file": str(base / str(value["file"]))}
    return value


class ConfigModel(BaseModel):
    """The base of every section: unknown keys refused, values frozen."""

    # hide_input_in_errors: a ValidationError printed as is must not show a secret input.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def plain_name(value: str) -> str:
    """The check of a plain name (integrations, action clients)."""
    if not _NAME.match(value):
        raise ValueError("only letters, digits, '.', '_' and '-'")
    return value
