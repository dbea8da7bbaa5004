"""Classification of the appliance's ``<error>`` texts into exception classes."""

from __future__ import annotations

import pytest

from rsbridge.appliance.xml import command_error
from rsbridge.errors import (
    ApplianceCommandError,
    AppliancePermissionError,
    InvalidCustomFieldError,
    RepresentativeNotFoundError,
    RepresentativeUnavailableError,
    SessionNotFoundError,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Permission denied: this API account does not have perm_command access",
            AppliancePermissionError,
        ),
        (
            "Error validating parameter 'queue_id': The representative could not be found",
            RepresentativeNotFoundError,
        ),
        (
            "Requested support representative is not available at this time",
            RepresentativeUnavailableError,
        ),
        (
            "Error validating parameter 'session.custom.nope': invalid custom field code name",
            InvalidCustomFieldError,
        ),
        (
            "Error validating parameter 'session.custom.ticket_id': value is too long",
            ApplianceCommandError,
        ),
        ("Error validating parameter 'lsid': The session could not be found", SessionNotFoundError),
        ("Something nobody documented", ApplianceCommandError),
    ],
)
def test_error_texts_map_to_classes(text: str, expected: type[ApplianceCommandError]) -> None:
    err = command_error(text, "generate_session_key")
    assert type(err) is expected
    assert err.appliance_text == text
    assert err.action == "generate_session_key"
    assert err.message.startswith(f"generate_session_key: the appliance answered {text!r}")
    assert not err.retryable
