"""ServiceNow's connection test: every table, column and right the connector relies on.

:func:`check_instance` is what ``rsbridge check`` runs for a ServiceNow integration. It

* logs in and reads a task (credentials, the ``itil``-like read right);
* reads ``sys_db_object`` (the tables and the tables they extend) and ``sys_dictionary``
  (their columns) for every table and column the connector writes or looks up: the
  session tables with their ``tables`` / ``fields`` renames, the task's journal field,
  the auto-create record type with its target fields (``short_description``,
  ``correlation_id``, the association's ``create_fields``, ``create_dynamic_fields`` and
  the lookups' fields), each lookup's table and column, and ``sys_user``'s
  ``user_match_field``; a misspelt name is a finding, with the nearest names as a hint;
* finds the record each static lookup (and each dynamic lookup's fallback) names;
* writes one probe row in each session table, reads it back and deletes it, in two
  Batch API calls: the integration user's create, read and delete rights as the
  instance's ACLs grant them. Probe rows are marked ``rsbridge-check-probe`` and have
  fresh sys_ids;
* does not write the journal field: a journal entry cannot be deleted and would show on
  a real task. Its presence and type are checked; the detail line says so.

All problems are collected and raised as one :class:`~rsbridge.errors.CheckFailedError`
whose ``findings`` name each problem with its fix. Calls: five for the default
configuration (task, tables, columns, two batches; one more for an OAuth token), plus one
per static lookup, one per level of ``extends`` not already read, and one more when a name
is misspelt (to suggest the right one).

:func:`instance_url_problem` checks the form of ``instance_url`` when the settings are
validated.
"""

from __future__ import annotations

import difflib
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rsbridge.connectors.base import CheckResult
from rsbridge.connectors.servicenow.client import BatchRequest, BatchResult, ServiceNowClient
from rsbridge.connectors.servicenow.schema import DEFAULT_TABLES
from rsbridge.errors import CheckFailedError, ConnectorError

if TYPE_CHECKING:
    from rsbridge.connectors.servicenow.tickets import TicketsMixin

PROBE_MARK = "rsbridge-check-probe"
"""The value that marks a probe row (in the session's ``lsid``, a child row's first text
column): an administrator who finds one may delete it."""

#: The text column of each session table that carries the probe mark.
_MARK_COLUMN = {
    "session": "lsid",
    "rep": "username",
    "customer": "name",
    "team": "name",
    "event": "event_type",
    "attribute": "code_name",
    "recording": "kind",
    "survey": "kind",
}
_JOURNAL_TYPES = frozenset({"journal", "journal_input"})
#: Most levels of ``extends`` followed (cmdb_ci_win_server is five deep).
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class _Need:
    """A column the connector writes or looks up, where it comes from and how to fix it."""

    table: str
    column: str
    source: str
    """What needs it, e.g. ``create_dynamic_fields`` or ``rsbridge's session table``."""
    fix_table: str
    fix_column: str


def instance_url_problem(value: str) -> str | None:
    """Why ``value`` is not an instance URL (a scheme and a host), or None.

    ``dev1234.service-now.com`` parses as a bare path: without this test it would pass
    validation and fail on the first call with an obscure error."""
    text = value.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"{text!r} is not a URL; write it as https://<instance>.service-now.com"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        host = text.split("/")[0] if "://" not in text else "<instance>.service-now.com"
        return f"{text!r} has no https:// scheme; write it as https://{host}"
    return None


def _needs(conn: TicketsMixin, create_fields: Mapping[str, str]) -> list[_Need]:
    c: Any = conn._c
    schema, options = conn.schema, conn.options
    needs: list[_Need] = []
    if c.write_session_records:
        for table in DEFAULT_TABLES:
            name = schema.table(table.logical)
            for column in table.columns:
                needs.append(
                    _Need(
                        name,
                        schema.col(table.logical, column.logical),
                        f"rsbridge's {table.logical} table",
                        "Import the table definition (`rsbridge servicenow tables` prints it; "
                        "System Definition > Tables, Import XML), or name the existing table "
                        f'with the tables setting ("{table.logical}=<name>")',
                        "re-import the table definition (`rsbridge servicenow tables`), or name "
                        f'the existing column with the fields setting ("{table.logical}.'
                        f'{column.logical}=<name>")',
                    )
                )
    needs.append(
        _Need(
            "task",
            options.journal_field,
            "journal_field",
            "the instance has no task table: is instance_url a ServiceNow instance?",
            "set journal_field to a journal field of task (work_notes or comments)",
        )
    )
    create = str(c.create_table)
    written = [("short_description", "auto-create"), ("correlation_id", "auto-create")]
    written += [(f, "the association's create_fields") for f in create_fields]
    written += [(f, "create_dynamic_fields") for f in options.dynamic]
    written += [(x.field, "create_lookup_fields") for x in options.lookups]
    written += [(x.field, "create_dynamic_lookup_fields") for x in options.dynamic_lookups]
    for field_name, source in written:
        needs.append(
            _Need(
                create,
                field_name,
                source,
                f"set create_table to a record type the instance has ({create!r} is missing)",
                f"correct {source}: use the field's name from System Definition > Dictionary",
            )
        )
    for source, lookups in (
        ("create_lookup_fields", options.lookups),
        ("create_dynamic_lookup_fields", options.dynamic_lookups),
    ):
        for x in lookups:
            needs.append(
                _Need(
                    x.table,
                    x.column,
                    f"{source} ({x.field})",
                    f"correct {source}: name a table of the instance",
                    f"correct {source}: name a column of {x.table}",
                )
            )
    if c.auto_associate_user:
        needs.append(
            _Need(
                "sys_user",
                str(c.user_match_field),
                "user_match_field",
                "the instance has no sys_user table",
                "set user_match_field to a sys_user column (user_name is the usual one)",
            )
        )
    return needs


async def _ancestry(client: ServiceNowClient, names: Iterable[str]) -> dict[str, list[str]]:
    """Each existing table of ``names`` with the tables it extends, itself first."""
    wanted = sorted(set(names))
    rows = await client.query(
        "sys_db_object", f"nameIN{','.join(wanted)}", fields=("sys_id", "name", "super_class")
    )
    by_id = {str(r["sys_id"]): r for r in rows}
    for _ in range(_MAX_DEPTH):
        parents = {str(r.get("super_class") or "") for r in by_id.values()} - {""} - set(by_id)
        if not parents:
            break
        more = await client.query(
            "sys_db_object",
            f"sys_idIN{','.join(sorted(parents))}",
            fields=("sys_id", "name", "super_class"),
        )
        if not more:
            break
        by_id.update({str(r["sys_id"]): r for r in more})
    chains: dict[str, list[str]] = {}
    for row in by_id.values():
        chain: list[str] = []
        current: Mapping[str, Any] | None = row
        while current is not None and len(chain) <= _MAX_DEPTH:
            chain.append(str(current["name"]))
            current = by_id.get(str(current.get("super_class") or ""))
        chains[chain[0]] = chain
    return {name: chains[name] for name in wanted if name in chains}


async def _dictionary(
    client: ServiceNowClient, tables: Iterable[str], columns: Iterable[str] | None
) -> dict[tuple[str, str], str]:
    """(table, column) to internal type, for the tables' own columns (``columns`` only)."""
    query = f"nameIN{','.join(sorted(set(tables)))}"
    if columns is not None:
        query += f"^elementIN{','.join(sorted(set(columns)))}"
    rows = await client.query("sys_dictionary", query, fields=("name", "element", "internal_type"))
    return {
        (str(r.get("name")), str(r.get("element"))): str(r.get("internal_type") or "")
        for r in rows
        if r.get("element")
    }


def _error_text(result: BatchResult) -> str:
    body = result.body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "").strip()
        detail = str(error.get("detail") or "").strip()
        return f"{message}: {detail}" if detail and detail != message else message or "error"
    return f"HTTP {result.status}"


class _Check:
    """One run of the check: what was found wrong, what was verified."""

    def __init__(self, conn: TicketsMixin, create_fields: Mapping[str, str]) -> None:
        self.conn = conn
        self.client = conn.client
        self.create_fields = create_fields
        self.findings: list[str] = []
        self.details: list[str] = []
        self.chains: dict[str, list[str]] | None = None
        self.types: dict[tuple[str, str], str] = {}

    async def run(self) -> CheckResult:
        client, c = self.client, self.conn._c
        await client.query("task", "", fields=("sys_id",), limit=1)
        needs = _needs(self.conn, self.create_fields)
        await self.schema(needs)
        await self.lookups()
        if c.write_session_records:
            await self.probe()
        else:
            self.details.append("write_session_records is off: no session tables checked")
        who = c.username or c.client_id or "?"
        where = f"instance {client.host}, user {who}"
        if self.findings:
            count = len(self.findings)
            raise CheckFailedError(
                f"{where}: {count} problem{'s' if count > 1 else ''} found", self.findings
            )
        return CheckResult(f"{where} ({client.calls} calls)", tuple(self.details))

    def has(self, table: str, column: str) -> bool:
        chain = (self.chains or {}).get(table, [table])
        return any((t, column) in self.types for t in chain)

    async def schema(self, needs: list[_Need]) -> None:
        try:
            self.chains = await _ancestry(self.client, (n.table for n in needs))
            tables = {t for chain in self.chains.values() for t in chain}
            self.types = await _dictionary(self.client, tables, {n.column for n in needs})
        except ConnectorError as exc:
            if exc.retryable:
                raise
            self.chains = None
            self.findings.append(
                f"cannot read sys_db_object / sys_dictionary ({exc.message}): tables and "
                "columns not verified. Fix: let the integration user read both tables "
                "(a read ACL), or verify them by hand against docs/servicenow.md"
            )
            return
        chains = self.chains
        missing_tables = sorted({n.table for n in needs if n.table not in chains})
        for table in missing_tables:
            need = next(n for n in needs if n.table == table)
            self.findings.append(
                f"table {table} is missing (needed by {need.source}). Fix: {need.fix_table}"
            )
        missing = [n for n in needs if n.table in chains and not self.has(n.table, n.column)]
        hints: dict[str, list[str]] = {}
        if missing:
            # Only now: every column of those tables, to suggest the name meant.
            tables = {t for n in missing for t in chains[n.table]}
            every = await _dictionary(self.client, tables, None)
            for n in missing:
                known = [col for (t, col) in every if t in chains[n.table]]
                hints[n.column] = difflib.get_close_matches(n.column, known, n=2, cutoff=0.6)
        for n in missing:
            near = hints.get(n.column) or []
            hint = f" (did you mean {' or '.join(near)}?)" if near else ""
            self.findings.append(
                f"{n.table} has no column {n.column}{hint} (needed by {n.source}). "
                f"Fix: {n.fix_column}"
            )
        present = [n for n in needs if n.table in chains]
        self.details.append(
            f"{len({n.table for n in present})} tables and {len(present)} columns verified "
            "in sys_dictionary"
        )
        journal = self.conn.options.journal_field
        kinds = {self.types.get((t, journal)) for t in chains.get("task", ["task"])} - {None}
        if self.has("task", journal) and not kinds & _JOURNAL_TYPES:
            self.findings.append(
                f"task.{journal} is not a journal field (type {', '.join(map(str, kinds))}). "
                "Fix: set journal_field to work_notes or comments"
            )
        elif self.has("task", journal):
            self.details.append(
                f"journal field task.{journal} present; not written by the check: a journal "
                "entry cannot be deleted and would show on a real task (the first import "
                "writes one; its failure names the missing right)"
            )

    async def lookups(self) -> None:
        """The record each static lookup value names must exist."""
        options = self.conn.options
        static = [(x, x.value, "create_lookup_fields") for x in options.lookups]
        static += [
            (x, x.fallback, "create_dynamic_lookup_fields (fallback)")
            for x in options.dynamic_lookups
            if x.fallback is not None
        ]
        for lookup, value, source in static:
            if self.chains is not None and not self.has(lookup.table, lookup.column):
                continue  # already a finding
            try:
                found = await self.conn._find(lookup, value)
            except ConnectorError as exc:
                if exc.retryable:
                    raise
                self.findings.append(
                    f"{source}: cannot read {lookup.table} ({exc.message}). Fix: let the "
                    f"integration user read {lookup.table}"
                )
                continue
            if found is None:
                self.findings.append(
                    f"{source}: no {lookup.table} record has {lookup.column} = {value!r}, so "
                    f"every auto-create would fail ({lookup.field}). Fix: correct the value "
                    "or create that record"
                )

    async def probe(self) -> None:
        """Write one marked row in each session table, then delete it."""
        schema = self.conn.schema
        session_id = uuid.uuid4().hex
        requests: list[BatchRequest] = []
        names: list[str] = []
        for table in DEFAULT_TABLES:
            name = schema.table(table.logical)
            if self.chains is not None and name not in self.chains:
                continue  # missing: already a finding
            sys_id = session_id if table.logical == "session" else uuid.uuid4().hex
            mark_col = schema.col(table.logical, _MARK_COLUMN[table.logical])
            row: dict[str, str] = {"sys_id": sys_id, mark_col: f"{PROBE_MARK}-{session_id[:12]}"}
            if table.logical != "session":
                row[schema.col(table.logical, "session")] = session_id
            names.append(name)
            requests.append(
                BatchRequest(sys_id, "POST", f"/api/now/table/{name}?sysparm_fields=sys_id", row)
            )
        if not requests:
            return
        created: list[tuple[str, str]] = []
        try:
            results = await self.client.batch(requests, what="check: write probe rows")
        except ConnectorError as exc:
            if exc.retryable:
                raise
            self.findings.append(
                f"the Batch API refused the probe rows ({exc.message}). Fix: let the "
                "integration user call /api/now/v1/batch (imports use it too)"
            )
            return
        for name, request, result in zip(names, requests, results, strict=True):
            if result.status in (200, 201):
                created.append((name, request.id))
            elif result.status == 403:
                self.findings.append(
                    f"no create right on {name} ({_error_text(result)}). Fix: grant the "
                    f"integration user create (and read, write) on {name}: an ACL or the "
                    "role the table's ACLs require"
                )
            else:
                self.findings.append(
                    f"a probe row could not be written in {name} ({_error_text(result)}). "
                    f"Fix: check {name}'s business rules and mandatory columns"
                )
        await self.remove(created)
        if created:
            self.details.append(
                f"probe rows written and deleted in {len(created)} of {len(requests)} "
                "session tables"
            )

    async def remove(self, created: list[tuple[str, str]]) -> None:
        """Read back, then delete the probe rows, children first; name any that stay.

        The read back is the read right imports need (they look for rows already written,
        to stay once-only); it shares the delete's Batch API call.
        """
        if not created:
            return
        order = list(reversed(created))
        requests: list[BatchRequest] = []
        for i, (t, s) in enumerate(order):
            requests.append(
                BatchRequest(f"r{i}", "GET", f"/api/now/table/{t}/{s}?sysparm_fields=sys_id")
            )
            requests.append(BatchRequest(f"d{i}", "DELETE", f"/api/now/table/{t}/{s}"))
        try:
            results = await self.client.batch(requests, what="check: delete probe rows")
        except ConnectorError as exc:
            left = ", ".join(f"{t} {s}" for t, s in order)
            self.findings.append(
                f"the probe rows could not be deleted ({exc.message}): {left}. Fix: delete "
                f"these rows (marked {PROBE_MARK}) by hand"
            )
            return
        for i, (table, sys_id) in enumerate(order):
            read, deleted = results[2 * i], results[2 * i + 1]
            if read.status != 200:
                self.findings.append(
                    f"no read right on {table} ({_error_text(read)}): imports read the rows "
                    f"they wrote, to write each once. Fix: grant the integration user read on "
                    f"{table}"
                )
            if deleted.status in (200, 204) or (deleted.status == 404 and read.status == 200):
                continue
            what = "no delete right on" if deleted.status == 403 else "could not delete in"
            self.findings.append(
                f"{what} {table} ({_error_text(deleted)}): the probe row {sys_id} "
                f"(marked {PROBE_MARK}) stays. Fix: delete it by hand, and grant the "
                f"integration user delete on {table} (rsbridge deletes only its probe rows)"
            )


async def check_instance(
    conn: TicketsMixin, create_fields: Mapping[str, str] | None = None
) -> CheckResult:
    """Run the connection test (module docstring); CheckFailedError lists the findings."""
    return await _Check(conn, create_fields or {}).run()
