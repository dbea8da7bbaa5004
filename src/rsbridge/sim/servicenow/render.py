"""Records as the Table and Attachment APIs return them.

Value mode (``sysparm_display_value=false``, the default): strings, and references as
``{"link": "<base>/api/now/table/<target>/<sys_id>", "value": "<sys_id>"}`` (an empty
reference is ``""``). ``true``: display values, references as ``{"display_value",
"link"}``. ``all``: ``{"display_value", "value"}`` for every field, plus ``link`` on
references. ``sysparm_exclude_reference_link=true`` drops the links (references become
plain strings in the first two modes). Journal fields read ``""`` as values and show
the whole journal as display values.

:func:`activity_html` is the other way an entry is seen: as the form's activity stream
shows it to a technician, where ``[code]...[/code]`` is HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rsbridge.sim.servicenow.state import SimServiceNowState
from rsbridge.sim.servicenow.tables import Column

DISPLAY_MODES = ("false", "true", "all")
#: Field order of Attachment API metadata (as in the vendor's documented example).
ATTACHMENT_FIELDS = (
    "size_bytes",
    "file_name",
    "sys_mod_count",
    "average_image_color",
    "image_width",
    "sys_updated_on",
    "sys_tags",
    "table_name",
    "sys_id",
    "image_height",
    "sys_updated_by",
    "download_link",
    "content_type",
    "sys_created_on",
    "size_compressed",
    "compressed",
    "state",
    "table_sys_id",
    "chunk_size_bytes",
    "hash",
    "sys_created_by",
)


class Renderer:
    """Turns stored records into API results for one request's parameters."""

    def __init__(
        self,
        state: SimServiceNowState,
        base_url: str,
        display: str = "false",
        exclude_links: bool = False,
    ) -> None:
        self.state = state
        self.base_url = base_url
        self.display = display if display in DISPLAY_MODES else "false"
        self.exclude_links = exclude_links

    def record(
        self, table: str, record: Mapping[str, str], fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """``record`` as a result object of ``table`` (its columns, or ``fields``:
        dot-walked names come back under the dotted key; unknown names are left out)."""
        state = self.state
        out: dict[str, Any] = {}
        for path in fields if fields is not None else list(state.columns(table)):
            found = state.path_column(table, path)
            if found is None:
                continue
            end_table, column = found
            target = state.path_record(table, record, path) if "." in path else record
            out[path] = self.field(end_table, target, column)
        return out

    def field(self, table: str, record: Mapping[str, str] | None, column: Column) -> Any:
        """One field in the request's display mode."""
        value = "" if record is None or column.is_journal else record.get(column.name, "")
        link = None
        if column.is_reference and value and not self.exclude_links:
            link = f"{self.base_url}/api/now/table/{column.reference}/{value}"
        if self.display == "false":
            return {"link": link, "value": value} if link else value
        shown = self.state.display_of(table, record, column)
        if self.display == "true":
            return {"display_value": shown, "link": link} if link else shown
        if link:
            return {"display_value": shown, "link": link, "value": value}
        return {"display_value": shown, "value": value}


def attachment_meta(record: Mapping[str, str], base_url: str) -> dict[str, str]:
    """Attachment API metadata of a ``sys_attachment`` record (all strings)."""
    values = dict(record)
    values["download_link"] = f"{base_url}/api/now/attachment/{record['sys_id']}/file"
    return {name: values.get(name, "") for name in ATTACHMENT_FIELDS}


# The instance's journal formatter: a [code]...[/code] block passes its content as HTML
# (glide.ui.security.allow_codetag, on out of the box); the tag is case-insensitive.
_CODE_BLOCK = re.compile(r"\[code\](.*?)\[/code\]", re.IGNORECASE | re.DOTALL)


def entry_html(text: str) -> str:
    """One journal entry as the activity stream renders it: escaped text with line breaks,
    except ``[code]`` blocks, whose content is inserted as HTML."""
    out: list[str] = []
    position = 0
    for block in _CODE_BLOCK.finditer(text):
        out.append(html.escape(text[position : block.start()]).replace("\n", "<br/>"))
        out.append(block.group(1))
        position = block.end()
    out.append(html.escape(text[position:]).replace("\n", "<br/>"))
    return "".join(out)


def activity_html(state: SimServiceNowState, element_id: str, element: str | None = None) -> str:
    """The journal of record ``element_id`` as HTML, newest entry first (one ``<div>`` each)."""
    return "".join(
        f'<div class="journal-entry">{entry_html(entry["value"])}</div>'
        for entry in state.journal(element_id, element)
    )
