"""Errors the simulated org answers with: the REST API's error array.

Shape (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm):
``[{"message": "...", "errorCode": "INVALID_FIELD", "fields": ["Name"]}]``; ``fields`` only
when the error is about fields. sObject Collections and composite bodies reuse the same
entries, collections with ``statusCode`` in place of ``errorCode``.
"""

from __future__ import annotations

from typing import Any

NOT_FOUND_MESSAGE = "The requested resource does not exist"


class SalesforceError(Exception):
    """A request the org refuses: HTTP ``status``, ``error_code``, ``message``, ``fields``."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def entry(self) -> dict[str, Any]:
        """One element of the error array."""
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return entry

    def body(self) -> list[dict[str, Any]]:
        """The error array the REST API answers with."""
        return [self.entry()]

    def collection_entry(self) -> dict[str, Any]:
        """The entry as sObject Collections word it (``statusCode``, ``fields`` always)."""
        return {
            "statusCode": self.error_code,
            "message": self.message,
            "fields": self.fields or [],
        }


def not_found(message: str = NOT_FOUND_MESSAGE) -> SalesforceError:
    """404 ``NOT_FOUND``."""
    return SalesforceError(404, "NOT_FOUND", message)


def invalid_field(message: str, fields: list[str] | None = None) -> SalesforceError:
    """400 ``INVALID_FIELD``."""
    return SalesforceError(400, "INVALID_FIELD", message, fields)


def malformed_query(message: str) -> SalesforceError:
    """400 ``MALFORMED_QUERY``."""
    return SalesforceError(400, "MALFORMED_QUERY", message)


def malformed_id(label: str, value: str, field: str = "Id") -> SalesforceError:
    """400 ``MALFORMED_ID``: ``Case ID: id value of incorrect type: xyz``."""
    return SalesforceError(
        400, "MALFORMED_ID", f"{label} ID: id value of incorrect type: {value}", [field]
    )


def json_parser_error(message: str) -> SalesforceError:
    """400 ``JSON_PARSER_ERROR``."""
    return SalesforceError(400, "JSON_PARSER_ERROR", message)
