"""Errors the simulated AR System server answers with: the REST API's error array.

Shape (itsm-apis.md 3.4; BMC "Error handling" for the REST API, and the error parsing in
``splunk-soar-connectors/bmcremedy: bmcremedy_connector.py``)::

    [{"messageType": "ERROR", "messageText": "Entry does not exist in database",
      "messageAppendedText": "INC000000000999", "messageNumber": 302}]
"""

from __future__ import annotations

import json
from typing import Any


class ARError(Exception):
    """A refused request: HTTP ``status`` and one AR message (number, text, appended text)."""

    def __init__(self, status: int, number: int, text: str, appended: str | None = None) -> None:
        super().__init__(f"{status} ARERR {number}: {text}")
        self.status = status
        self.number = number
        self.text = text
        self.appended = appended

    def entry(self) -> dict[str, Any]:
        """One element of the error array."""
        return {
            "messageType": "ERROR",
            "messageText": self.text,
            "messageAppendedText": self.appended,
            "messageNumber": self.number,
        }

    def body(self) -> bytes:
        """The JSON error array."""
        return json.dumps([self.entry()]).encode()


def not_found(appended: str) -> ARError:
    """404, ARERR 302 (the entry id in ``messageAppendedText``)."""
    return ARError(404, 302, "Entry does not exist in database", appended)


def authentication_failed(appended: str | None = None) -> ARError:
    """401, ARERR 623: a bad, expired or released token, or a refused login."""
    return ARError(401, 623, "Authentication failed", appended)


def no_such_field(form: str, field: str) -> ARError:
    """400, ARERR 314 (``messageAppendedText: "HPD:Help Desk : <field>"``)."""
    return ARError(400, 314, "Field does not exist on current form", f"{form} : {field}")


def no_such_form(form: str) -> ARError:
    """404, ARERR 303."""
    return ARError(404, 303, "Form does not exist on server", form)


def required_field(form: str, field: str) -> ARError:
    """400, ARERR 326: a required field left empty on create or cleared on update."""
    return ARError(400, 326, "Required field cannot be blank.", f"{form} : {field}")


def duplicate_key(form: str, fields: str) -> ARError:
    """400, ARERR 382: the save repeats the values of a unique index."""
    return ARError(
        400,
        382,
        "The value(s) for this entry violate a unique index that has been defined for this form",
        f"{form} : {fields}",
    )


def bad_value(form: str, field: str, detail: str) -> ARError:
    """400, ARERR 306: a value outside what the field accepts (unknown selection, bad date)."""
    return ARError(
        400,
        306,
        "Value does not fall within the limits specified for the field",
        f"{form} : {field} : {detail}",
    )


def bad_qualification(detail: str) -> ARError:
    """400, ARERR 1587: the ``q`` qualification does not parse."""
    return ARError(400, 1587, "The qualification line is invalid", detail)


def bad_request(detail: str) -> ARError:
    """400 for a body the server cannot read (ARERR 8931: invalid JSON)."""
    return ARError(400, 8931, "Invalid request body", detail)
