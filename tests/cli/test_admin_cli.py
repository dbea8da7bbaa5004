"""``rsbridge admin hash-password``: an Argon2id hash the ``[admin]`` configuration accepts,
the password never echoed."""

from __future__ import annotations

from argon2 import PasswordHasher
from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.config import parse_config
from rsbridge.web.admin.auth import password_matches


def _hash_line(stdout: str) -> str:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout  # the hash alone on stdout: scripts take it as is
    return lines[0]


def test_stdin_gives_a_hash_the_configuration_and_sign_in_accept() -> None:
    result = CliRunner().invoke(app, ["admin", "hash-password", "--stdin"], input="s3cret pw\n")
    assert result.exit_code == 0, result.output
    hashed = _hash_line(result.stdout)
    assert hashed.startswith("$argon2id$")
    assert "s3cret" not in result.output
    assert PasswordHasher().verify(hashed, "s3cret pw")  # the newline is not part of it
    assert password_matches(hashed, "s3cret pw") and not password_matches(hashed, "s3cret")
    admin = {"enabled": True, "users": [{"name": "olga", "password_hash": hashed}]}
    assert parse_config({"admin": admin}).admin.users[0].name == "olga"


def test_two_hashes_of_one_password_differ() -> None:
    runs = [
        CliRunner().invoke(app, ["admin", "hash-password", "--stdin"], input="same\n")
        for _ in range(2)
    ]
    first, second = (_hash_line(r.stdout) for r in runs)
    assert first != second  # salted


def test_the_prompt_asks_twice_and_hides_the_password() -> None:
    # A mismatch is asked again; the second pair matches.
    result = CliRunner().invoke(
        app, ["admin", "hash-password"], input="first-try\nfirst-tyr\nhidden-pw\nhidden-pw\n"
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    hashed = _hash_line(result.stdout)
    assert PasswordHasher().verify(hashed, "hidden-pw")
    assert "hidden-pw" not in result.output and "first-try" not in result.output


def test_an_empty_password_is_refused() -> None:
    result = CliRunner().invoke(app, ["admin", "hash-password", "--stdin"], input="\n")
    assert result.exit_code == 1
    assert "the password is empty" in result.output
    assert result.stdout == ""
