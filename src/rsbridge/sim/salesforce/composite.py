"""``/composite`` and ``/composite/sobjects`` (sObject Collections).

Composite (resources_composite_composite_post): up to 25 sub-requests run in order as the
caller; ``@{referenceId.path}`` in a URL or body names a value of an earlier answer
(``@{refCase.id}``, ``@{refQuery.records[0].Id}``). The call answers 200 with
``compositeResponse`` entries (``body``, ``httpHeaders``, ``httpStatusCode``,
``referenceId``). With ``allOrNone`` a failure rolls every change back; the other entries
then carry ``PROCESSING_HALTED`` ("The transaction was rolled back since another operation
in the same transaction failed."), as the composite response-body page shows. The texts for
an unresolved reference, more than 25 sub-requests or more than 5 queries are inferred.

Collections (resources_composite_sobjects_collections): up to 200 records, one result per
record (``id``, ``success``, ``errors`` with ``statusCode``); with ``allOrNone`` the other
records answer ``ALL_OR_NONE_OPERATION_ROLLED_BACK``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rsbridge.sim.salesforce import query
from rsbridge.sim.salesforce.errors import SalesforceError
from rsbridge.sim.salesforce.ids import to18
from rsbridge.sim.salesforce.state import LoggedRequest
from rsbridge.sim.salesforce.wire import (
    Context,
    SimRequest,
    SimResponse,
    body_object,
    error_response,
    json_response,
)

if TYPE_CHECKING:
    from rsbridge.sim.salesforce.server import Handler, Org

MAX_SUBREQUESTS = 25
MAX_COLLECTION = 200
#: Query, queryAll and sObject Collections sub-requests one composite call may hold.
MAX_QUERIES = 5
_QUERY_URL = re.compile(r"/services/data/v[\d.]+/query(?:All)?/?(?:\?|$)", re.IGNORECASE)
_COLLECTIONS_URL = re.compile(r"/services/data/v[\d.]+/composite/sobjects(?:/|\?|$)", re.IGNORECASE)
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_SUB_URL = re.compile(r"/services/data/v(?P<version>\d+\.\d)(?P<rest>/.*)")
HALTED = "The transaction was rolled back since another operation in the same transaction failed."
ROLLED_BACK = (
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header"
)


class _UnresolvedError(Exception):
    pass


def _lookup(results: dict[str, Any], name: str, path: str) -> Any:
    if name not in results:
        raise _UnresolvedError(name)
    value = results[name]
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = step
        try:
            if key:
                if not isinstance(value, dict):
                    raise _UnresolvedError(name)
                match = next((k for k in value if k.lower() == key.lower()), None)
                value = value[match] if match is not None else None
            else:
                value = value[int(index)]
        except (IndexError, KeyError, TypeError):
            raise _UnresolvedError(name) from None
        if value is None:
            raise _UnresolvedError(name)
    return value


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return _lookup(results, whole.group(1), whole.group(2))
        return _REFERENCE.sub(lambda m: str(_lookup(results, m.group(1), m.group(2))), value)
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    return value


class Composite:
    """The composite handlers of one org."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.state = org.state

    def collection_methods(self) -> dict[str, Handler]:
        """Methods of ``/composite/sobjects``."""
        return {
            "POST": self.collection_create,
            "PATCH": self.collection_update,
            "DELETE": self.collection_delete,
        }

    # --- composite ----------------------------------------------------------------------

    def composite(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        payload = body_object(req)
        items = payload.get("compositeRequest")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_SUBREQUESTS:
            raise SalesforceError(
                400,
                "INVALID_API_INPUT",
                f"compositeRequest must contain between 1 and {MAX_SUBREQUESTS} subrequests",
            )
        # "Up to 5 of these subrequests can be sObject Collections or query operations"
        # (resources_composite_composite_post); the answer's text is inferred.
        heavy = sum(
            1
            for item in items
            if isinstance(item, dict)
            and (
                _QUERY_URL.search(str(item.get("url", "")))
                or _COLLECTIONS_URL.search(str(item.get("url", "")))
            )
        )
        if heavy > MAX_QUERIES:
            raise SalesforceError(
                400,
                "INVALID_API_INPUT",
                f"A composite request can contain at most {MAX_QUERIES} query or sObject "
                "Collections operations",
            )
        all_or_none = payload.get("allOrNone") is True
        snapshot = self.state.snapshot() if all_or_none else None
        results: dict[str, Any] = {}
        entries: list[dict[str, Any]] = []
        failed = False
        for item in items:
            if not isinstance(item, dict):
                raise SalesforceError(400, "JSON_PARSER_ERROR", "subrequest must be an object")
            reference = str(item.get("referenceId", ""))
            if failed and all_or_none:
                entries.append(_halted(reference))
                continue
            answer = self._sub(req, ctx, item, results)
            body = answer.json()
            if answer.status < 300:
                results[reference] = body
            else:
                failed = True
            headers = (
                {"Location": answer.headers["Location"]} if "Location" in answer.headers else {}
            )
            entries.append(
                {
                    "body": body,
                    "httpHeaders": headers,
                    "httpStatusCode": answer.status,
                    "referenceId": reference,
                }
            )
        if snapshot is not None and not failed:
            self.state.release(snapshot)
        if failed and snapshot is not None:
            self.state.restore(snapshot)
            entries = [
                e if e["httpStatusCode"] >= 300 else _halted(e["referenceId"]) for e in entries
            ]
        return json_response(200, {"compositeResponse": entries})

    def _sub(
        self, req: SimRequest, ctx: Context, item: dict[str, Any], results: dict[str, Any]
    ) -> SimResponse:
        try:
            url = _substitute(str(item.get("url", "")), results)
            body = _substitute(item.get("body"), results)
        except _UnresolvedError as exc:
            return error_response(
                SalesforceError(
                    400,
                    "PROCESSING_HALTED",
                    f"Invalid reference specified. No value for {exc} found in the results "
                    "of earlier subrequests.",
                )
            )
        split = urlsplit(str(url))
        match = _SUB_URL.fullmatch(split.path)
        method = str(item.get("method", "GET")).upper()
        if match is None:
            answer = error_response(
                SalesforceError(400, "NOT_FOUND", "The requested resource does not exist")
            )
        elif match["rest"].strip("/").lower() == "composite":
            # A composite inside a composite is refused (inferred text).
            answer = error_response(
                SalesforceError(400, "INVALID_API_INPUT", "composite is not a valid subrequest")
            )
        else:
            headers = {str(k).lower(): str(v) for k, v in (item.get("httpHeaders") or {}).items()}
            headers.setdefault("content-type", "application/json")
            sub = SimRequest(
                method,
                split.path,
                split.query,
                headers,
                json.dumps(body).encode() if body is not None else b"",
                req.base_url,
                req.host,
            )
            sub_ctx = Context(ctx.user_id, match["version"], [])
            answer = self.org.dispatch(sub, sub_ctx, match["rest"])
            if answer.status == 201 and isinstance(answer.json(), dict):
                record_id = answer.json().get("id")
                object_name = match["rest"].strip("/").split("/")[1]
                if record_id:
                    answer.headers["Location"] = query.record_url(
                        match["version"], object_name, record_id
                    )
        ctx.subs.append(LoggedRequest(method, split.path, split.query, ctx.user_id, answer.status))
        return answer

    # --- sObject Collections -------------------------------------------------------------

    def _collection(self, req: SimRequest) -> tuple[list[Any], bool]:
        payload = body_object(req)
        records = payload.get("records")
        if not isinstance(records, list) or len(records) > MAX_COLLECTION:
            raise SalesforceError(
                400,
                "INVALID_API_INPUT",
                f"records must be a list of at most {MAX_COLLECTION} records",
            )
        return records, payload.get("allOrNone") is True

    def _each(
        self,
        items: list[Any],
        all_or_none: bool,
        operation: Callable[[Any], dict[str, Any]],
    ) -> SimResponse:
        snapshot = self.state.snapshot() if all_or_none else None
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                outcome = operation(item)
                results.append({"id": outcome.pop("id"), "success": True, "errors": [], **outcome})
            except SalesforceError as exc:
                record_id = item.get("Id") if isinstance(item, dict) else item
                results.append(
                    {
                        "id": record_id if isinstance(record_id, str) else None,
                        "success": False,
                        "errors": [exc.collection_entry()],
                    }
                )
        if snapshot is not None and all(r["success"] for r in results):
            self.state.release(snapshot)
        if snapshot is not None and any(not r["success"] for r in results):
            self.state.restore(snapshot)
            rolled = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": ROLLED_BACK,
                "fields": [],
            }
            results = [
                r if not r["success"] else {"id": None, "success": False, "errors": [rolled]}
                for r in results
            ]
        return json_response(200, results)

    def _type(self, item: Any) -> str:
        if not isinstance(item, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "records must be objects")
        attributes = item.get("attributes")
        name = attributes.get("type") if isinstance(attributes, dict) else None
        if not isinstance(name, str):
            raise SalesforceError(400, "INVALID_TYPE", "Must send a concrete entity type.", [])
        return name

    def collection_create(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        items, all_or_none = self._collection(req)

        def create(item: Any) -> dict[str, Any]:
            values = (
                {k: v for k, v in item.items() if k != "attributes"}
                if isinstance(item, dict)
                else {}
            )
            return {"id": self.state.create(self._type(item), values, user_id=ctx.user_id)["Id"]}

        return self._each(items, all_or_none, create)

    def collection_update(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        items, all_or_none = self._collection(req)

        def update(item: Any) -> dict[str, Any]:
            name = self._type(item)
            record_id = item.get("Id") or item.get("id")
            if not isinstance(record_id, str):
                raise SalesforceError(
                    400, "MISSING_ARGUMENT", "Id not specified in an update call", []
                )
            values = {k: v for k, v in item.items() if k not in ("attributes", "Id", "id")}
            return {"id": self.state.update(name, record_id, values, user_id=ctx.user_id)["Id"]}

        return self._each(items, all_or_none, update)

    def collection_delete(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        ids = [i for i in req.params.get("ids", "").split(",") if i]
        if not ids or len(ids) > MAX_COLLECTION:
            raise SalesforceError(400, "INVALID_API_INPUT", "ids must name 1 to 200 records")

        def delete(record_id: Any) -> dict[str, Any]:
            definition = self.state.object_of_id(str(record_id))
            if definition is None:
                raise SalesforceError(
                    404, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []
                )
            self.state.delete(definition.name, str(record_id))
            return {"id": self.state.records[definition.name][_normal(str(record_id))]["Id"]}

        return self._each(ids, req.params.get("allOrNone", "").lower() == "true", delete)

    def collection_upsert(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        """``PATCH /composite/sobjects/{type}/{externalIdField}``: results carry ``created``."""
        definition = self.state.require_object(parts[2])
        column = definition.field(parts[3])
        if column is None or not column.external_id:
            raise SalesforceError(
                400,
                "INVALID_FIELD",
                f"Field name provided, {parts[3]} is not an External ID or indexed field for "
                f"{definition.name}",
            )
        items, all_or_none = self._collection(req)

        def upsert(item: Any) -> dict[str, Any]:
            if self._type(item).lower() != definition.name.lower():
                raise SalesforceError(
                    400, "INVALID_TYPE", "All records must be of the URL type", []
                )
            values = {k: v for k, v in item.items() if k != "attributes"}
            key = next((v for k, v in values.items() if k.lower() == column.name.lower()), None)
            if key is None:
                raise SalesforceError(
                    400,
                    "MISSING_ARGUMENT",
                    f"{column.name} not specified",
                    [column.name],
                )
            try:
                record, created = query.upsert(
                    self.state, definition.name, column.name, str(key), values, user_id=ctx.user_id
                )
            except query.MultipleMatchesError as exc:
                raise SalesforceError(
                    400,
                    "DUPLICATE_EXTERNAL_ID",
                    f"{column.name}: more than one record found for external id field: "
                    f"[{', '.join(exc.ids)}]",
                    [column.name],
                ) from None
            return {"id": record["Id"], "created": created}

        return self._each(items, all_or_none, upsert)

    def retrieve(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        """``GET /composite/sobjects/{type}?ids=...&fields=...``: records or ``null``."""
        definition = self.state.require_object(parts[2])
        ids = [i for i in req.params.get("ids", "").split(",") if i]
        fields = [f for f in req.params.get("fields", "").split(",") if f]
        if not ids or not fields:
            raise SalesforceError(400, "MISSING_ARGUMENT", "ids and fields are required")
        out: list[Any] = []
        for record_id in ids:
            record = self.state.get(definition.name, record_id)
            out.append(
                None
                if record is None
                else query.public_record(self.state, ctx.version, record, fields)
            )
        return json_response(200, out)


def _normal(record_id: str) -> str:
    return to18(record_id) or record_id


def _halted(reference: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": HALTED}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference,
    }
