"""Errors the simulated knowledge base answers with, and the documented texts.

An :class:`AgiloftError` carries the HTTP status that ``err_code_resp=1`` reveals (without
it every error answers 200, itsm-apis.md 4.3) and the message. How it is written on the wire
(the ``/.json`` envelope or an HTML exception page) is in ``ewrest.py``.

Texts marked *documented* are quoted from Agiloft's REST help as transcribed in
``simstudioai/sim: .agiloft-spec/SPEC.md``; the others are inferred (docs/simulator.md,
"Fidelity").
"""

from __future__ import annotations

# Documented texts.
BOTH_CREDENTIALS = "One has to specify $login and $password parameters or authentication token."
NO_CREDENTIALS = (
    "One has to specify $login, $password parameters or use $genhotlink/$genproject pair"
)
MISSING_SYSTEM = (
    "One has to specify $table, $KB, $lang parameters or use $genhotlink/$genproject pair"
)
EXPIRED = "Token is expired"
WRONG_AUTHORIZATION = "Wrong Authorization data"
AUTHENTICATION_FAILED = "Authentication failed."
NO_SESSION = "No active session found for current token"
KB_MISMATCH = "Wrong combination of access token and KB name. No access to data in KB"
REFRESH_EXPIRED = "Refresh Token is expired"
NO_ID = "One has to specify id value."
NO_ID_OR_SEARCH = "One has to specify id or searchSQL value."
NO_DATA = "no data found for id range(s)"
QUERY_FAILED = "Error executing query, please consult logs"


class AgiloftError(Exception):
    """A refused call: the HTTP status (shown with ``err_code_resp=1``) and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


def bad(message: str) -> AgiloftError:
    """400 with ``message``."""
    return AgiloftError(400, message)


def no_kb(kb: str) -> AgiloftError:
    """400 "Cannot find specified knowledgebase: <KB>" (documented; KB names are
    case-sensitive)."""
    return AgiloftError(400, f"Cannot find specified knowledgebase: {kb}")


def no_table(table: str) -> AgiloftError:
    """400 "Table <table> has not been found" (documented)."""
    return AgiloftError(400, f"Table {table} has not been found")


def no_column(column: str, table: str) -> AgiloftError:
    """400 "No column <x> in table <y>" (documented for EWSearch; used for every unknown
    field)."""
    return AgiloftError(400, f"No column {column} in table {table}")


def no_value(parameter: str) -> AgiloftError:
    """400 "No value for '<parameter>' parameter specified." (documented for ``field`` and
    ``fileName``)."""
    return AgiloftError(400, f"No value for '{parameter}' parameter specified.")


def wrong_value(column: str, detail: str) -> AgiloftError:
    """400 "Wrong format/value pointed to <column>" (documented), with what was wrong."""
    return AgiloftError(400, f"Wrong format/value pointed to {column}: {detail}")


def no_rest(login: str) -> AgiloftError:
    """403 for a user whose group is not under "Groups allowed for REST" (the text is the
    documented EWLogin one, "User <userName> lacks permission log in")."""
    return AgiloftError(403, f"User {login} lacks permission log in")


def not_found(record_id: int | str) -> AgiloftError:
    """400 "no data found for id range(s)" (documented), naming the id."""
    return AgiloftError(400, f"{NO_DATA} {record_id}")


def dependants(count: int) -> AgiloftError:
    """409 "Operation cannot be done. Record has <n> dependants" (documented)."""
    return AgiloftError(409, f"Operation cannot be done. Record has {count} dependants")


def parse_error(error: str, query: str) -> AgiloftError:
    """400 "Error <error> parsing the query <query>" (documented for EWSelect)."""
    return AgiloftError(400, f"Error {error} parsing the query {query}")


def method_not_allowed(method: str) -> AgiloftError:
    """405 "HTTP method <m> is not supported by this URL" (documented)."""
    return AgiloftError(405, f"HTTP method {method} is not supported by this URL")
