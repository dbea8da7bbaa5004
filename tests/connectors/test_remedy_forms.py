"""``rsbridge remedy forms``: the definition file, read back by the simulated AR server.

The file is generated from the session-form model; the simulator loads the file (not the
model) and a real HTTP create and search on each form must accept every field the model
declares, so what users import is what the tests exercise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from rsbridge.connectors.remedy.commands import remedy_app
from rsbridge.connectors.remedy.definition import (
    DEF_FILE,
    PANEL_FILE,
    VIEW_ID,
    definition_files,
    definition_text,
    panel_text,
)
from rsbridge.connectors.remedy.forms import (
    LONG,
    PANEL_COLUMNS,
    SESSION,
    SESSION_FORMS,
    FormField,
    SessionForm,
)
from rsbridge.errors import ConfigurationError
from rsbridge.sim.remedy import (
    SimRemedyState,
    create_app,
    load_definition,
    parse_definition,
    read_definition,
    seed_forms,
)
from rsbridge.sim.remedy.cli import serve
from rsbridge.sim.remedy.forms import FormDefinitionError
from rsbridge.sim.remedy.seed import INTEGRATION
from rsbridge.sim.serve import serve_in_thread

ENTRY = "/api/arsys/v1/entry"
CORE_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 15]
FORMS = {form.logical: form for form in SESSION_FORMS}


def _write(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(remedy_app, ["forms", "--out", str(tmp_path), *args])


# -- the command ---------------------------------------------------------------------------


def test_forms_writes_the_definition_and_the_panel_and_says_what_next(tmp_path: Path) -> None:
    out = tmp_path / "remedy"
    result = _write(out)
    assert result.exit_code == 0, result.output
    definition, panel = out / DEF_FILE, out / PANEL_FILE
    assert f"wrote {definition}" in result.output and f"wrote {panel}" in result.output
    assert "File > Import > Object Definitions" in result.output
    assert "rsbridge check" in result.output
    text = definition.read_text(encoding="utf-8")
    assert text.startswith("char-set: UTF-8\n")
    assert [form["name"] for form in parse_definition(text)] == [f.name for f in SESSION_FORMS]
    assert "RSB:Session" in panel.read_text(encoding="utf-8")


def test_forms_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / DEF_FILE).write_text("mine", encoding="utf-8")
    result = _write(tmp_path)
    assert result.exit_code == 1
    assert "already exist" in result.output and "--force" in result.output
    assert (tmp_path / DEF_FILE).read_text(encoding="utf-8") == "mine"
    assert not (tmp_path / PANEL_FILE).exists()  # nothing half-written
    forced = _write(tmp_path, "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / DEF_FILE).read_text(encoding="utf-8").startswith("char-set: UTF-8")


def test_forms_refuses_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("x", encoding="utf-8")
    result = _write(blocker)
    assert result.exit_code == 1 and "is not a directory" in result.output


def test_forms_defaults_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(remedy_app, ["forms"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / DEF_FILE).is_file() and (tmp_path / PANEL_FILE).is_file()


# -- the file against the model ---------------------------------------------------------------


def _model_view(form: SessionForm) -> list[dict[str, Any]]:
    return [
        {
            "id": f.id,
            "name": f.name,
            "type": f.type,
            "length": f.length if f.type == "char" else None,
            "options": dict(f.options),
            "required": f.required,
            "help": f.help,
        }
        for f in form.fields
    ]


def _file_view(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("id", "name", "type", "length", "options", "required", "help")
    return [{k: f[k] for k in keys} for f in parsed["fields"] if f["id"] not in CORE_IDS]


@pytest.mark.parametrize("logical", list(FORMS))
def test_the_parsed_file_equals_the_model(logical: str) -> None:
    form = FORMS[logical]
    parsed = {p["name"]: p for p in parse_definition(definition_text())}[form.name]
    assert _file_view(parsed) == _model_view(form)
    assert parsed["indexes"] == [{"fields": [form.field(form.key).id], "unique": True}]
    # AR's core fields, then the model's; the server sets the system ones.
    assert [f["id"] for f in parsed["fields"]][: len(CORE_IDS)] == CORE_IDS
    system = {f["id"] for f in parsed["fields"] if f["system"]}
    assert system == {1, 3, 5, 6, 15}
    # One default view that shows every field of the model.
    assert parsed["views"] == {VIEW_ID: parsed["default_view"]}
    shown = {f["id"] for f in parsed["fields"] if VIEW_ID in f["views"]}
    assert {f.id for f in form.fields} <= shown


def test_a_model_change_shows_up_in_the_file() -> None:
    changed = dataclasses.replace(
        SESSION,
        name="ACME:Remote Session",
        key="Session ID",
        fields=(
            *(
                dataclasses.replace(f, length=99) if f.name == "Appliance" else f
                for f in SESSION.fields
            ),
            FormField(536870999, "Outcome", "selection", options={"Solved": 0, "Escalated": 1}),
            FormField(536871000, "Notes", length=LONG),
        ),
    )
    (parsed,) = parse_definition(definition_text([changed]))
    assert parsed["name"] == "ACME:Remote Session"
    by_name = {f["name"]: f for f in parsed["fields"]}
    assert by_name["Appliance"]["length"] == 99
    assert by_name["Outcome"]["options"] == {"Solved": 0, "Escalated": 1}
    assert by_name["Notes"]["length"] == 0  # AR's "unlimited"
    assert parsed["indexes"] == [{"fields": [536870914], "unique": True}]
    assert _file_view(parsed) == _model_view(changed)


def test_the_panel_names_each_column_field_of_the_session_form() -> None:
    text = panel_text()
    for name, vendor in PANEL_COLUMNS:
        assert f"| {name} | {SESSION.field(name).id} | {name} |" in text
        assert vendor in text
    assert "'Ticket Number' = $Incident Number$" in text
    renamed = dataclasses.replace(SESSION, name="ACME:Sessions")
    assert "source form `ACME:Sessions`" in definition_files([renamed])[PANEL_FILE]


def test_what_the_format_cannot_say_is_refused() -> None:
    gappy = dataclasses.replace(
        SESSION,
        fields=(*SESSION.fields, FormField(536870999, "Odd", "selection", options={"A": 5})),
    )
    with pytest.raises(ConfigurationError, match="codes 0, 1, 2"):
        definition_text([gappy])
    slashed = dataclasses.replace(SESSION, fields=(*SESSION.fields, FormField(536870999, "A\\B")))
    with pytest.raises(ConfigurationError, match="backslash"):
        definition_text([slashed])
    low = dataclasses.replace(SESSION, fields=(*SESSION.fields, FormField(1000, "Low")))
    with pytest.raises(ConfigurationError, match="536870913"):
        definition_text([low])


# -- the reader --------------------------------------------------------------------------------

# A hand-written file in the exported layout: a continued display-instance line, an active
# link to skip, a display-only field and a layout (trim) field that hold no data.
SAMPLE = """char-set: UTF-8
#
#  File exported Tue Apr  1 15:27:05 2025
#
begin schema
   name           : T:Sample
   num-fields     : 3
   schema-type    : 1
   index          : 2\\536870913 536870914\\0
field {
   id             : 536870913
   name           : Code
   datatype       : 4
   fieldtype      : 1
   option         : 1
   maxlength      : 12
 display-instance : 536870912\\3\\20\\4\\4\\Code\\3\\41\\2\\0\\0\\1&
 display-instance : 00\\2100\\4\\6\\1\\
}
field {
   id             : 536870914
   name           : Level
   datatype       : 6
   fieldtype      : 1
   option         : 2
   enum-value     : Low
   enum-value     : High
   default        : 1
}
field {
   id             : 536870915
   name           : Scratch
   datatype       : 4
   fieldtype      : 1
   option         : 4
}
field {
   id             : 536870916
   name           : Line
   datatype       : 31
   fieldtype      : 0
   option         : 4
}
end
begin active link
   name           : T:Sample-al
   actlink-query  : 4\\1\\1\\4\\2\\4\\3\\abc\\
end
"""


def test_the_reader_follows_the_export_layout() -> None:
    (form,) = parse_definition(SAMPLE)
    assert form["name"] == "T:Sample"
    assert [(f["name"], f["type"]) for f in form["fields"]] == [
        ("Code", "char"),
        ("Level", "selection"),
    ]
    code, level = form["fields"]
    assert code["required"] and code["length"] == 12 and code["views"] == [536870912]
    assert level["options"] == {"Low": 0, "High": 1} and level["default"] == 1
    assert form["indexes"] == [{"fields": [536870913, 536870914], "unique": False}]


def test_the_reader_takes_crlf_files_with_control_characters_in_values(tmp_path: Path) -> None:
    # Exports end lines with CRLF, and a change diary holds a bare "\r" and \x01/\x03
    # separators inside one value (ARSperl's exported test forms do).
    text = SAMPLE.replace("\n", "\r\n").replace(
        "   name           : T:Sample-al\r\n",
        "   name           : T:Sample-al\r\n"
        "   change-diary   : 1049121045\x04me\x04note\r\x01\x03\r\n",
    )
    path = tmp_path / "crlf.def"
    path.write_bytes(text.encode("utf-8"))
    (form,) = read_definition(path)
    assert [f["name"] for f in form["fields"]] == ["Code", "Level"]
    assert form["fields"][0]["views"] == [536870912]


def test_join_and_display_only_forms_are_skipped() -> None:
    join = SAMPLE.replace("schema-type    : 1", "schema-type    : 2")
    assert parse_definition(join) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("begin schema\n   name : X\n   schema-type : 1\n", "has no 'end'"),
        ("begin schema\n   name : X\n   schema-type : 1\nnot a pair\nend\n", "not 'key : value'"),
        ("   name : X\n", "outside 'begin ... end'"),
        (
            "begin schema\n   name : X\n   schema-type : 1\n   index : 1\\99\\1\nend\n",
            "unknown fields",
        ),
        (
            "begin schema\n   name : X\n   schema-type : 1\nfield {\n   id : 5\n   name : A\n"
            "   datatype : 4\n   option : 2\n   help-text : a&\nend\n",
            "continuation",
        ),
    ],
)
def test_the_reader_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FormDefinitionError, match=message):
        parse_definition(text)


# -- the simulator serves the imported forms -----------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimRemedyState, httpx.Client]]:
    """A simulated AR server with the ITSM forms and the session forms of the written file."""
    result = _write(tmp_path)
    assert result.exit_code == 0, result.output
    state = SimRemedyState()
    seed_forms(state)
    load_definition(state, tmp_path / DEF_FILE)
    with serve_in_thread(create_app(state)) as url, httpx.Client(base_url=url, timeout=10) as http:
        login = http.post(
            "/api/jwt/login", data={"username": INTEGRATION[0], "password": INTEGRATION[1]}
        )
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"AR-JWT {login.text}"
        yield state, http


def _value(f: FormField, tag: str) -> Any:
    if f.type == "integer":
        return 42
    if f.type == "datetime":
        return "2025-01-15T10:00:00.000+0000"
    if f.type == "selection":
        return list(f.options)[-1]
    text = f"{tag} {f.name} " + ("long text " * 500 if f.length == LONG else "")
    return text[: f.length] if f.length != LONG else text


@pytest.mark.parametrize("logical", list(FORMS))
def test_every_model_field_goes_through_http_on_the_loaded_form(
    served: tuple[SimRemedyState, httpx.Client], logical: str
) -> None:
    _state, http = served
    form = FORMS[logical]
    values = {f.name: _value(f, "v1") for f in form.fields}
    path = f"{ENTRY}/{quote(form.name)}"
    created = http.post(path, json={"values": values})
    assert created.status_code == 201, created.text
    assert created.headers["Location"]
    key = values[form.key]
    found = http.get(path, params={"q": f"'{form.key}' = \"{key}\""})
    assert found.status_code == 200, found.text
    (entry,) = found.json()["entries"]
    assert {name: entry["values"][name] for name in values} == values
    assert entry["values"]["Submitter"] == INTEGRATION[0]  # the core fields are there too
    assert entry["values"]["Status"] == "New"


@pytest.mark.parametrize("logical", list(FORMS))
def test_the_loaded_form_requires_what_the_model_requires(
    served: tuple[SimRemedyState, httpx.Client], logical: str
) -> None:
    _state, http = served
    form = FORMS[logical]
    path = f"{ENTRY}/{quote(form.name)}"
    required = [f for f in form.fields if f.required]
    assert required, "every session form has a required key"
    for missing in required:
        values = {f.name: _value(f, "v2") for f in required if f is not missing}
        answer = http.post(path, json={"values": values})
        assert answer.status_code == 400, (missing.name, answer.text)
        assert missing.name in answer.text
    unknown = http.post(
        path, json={"values": {**{f.name: _value(f, "v3") for f in required}, "Nope": "x"}}
    )
    assert unknown.status_code in (400, 404) and unknown.json()[0]["messageNumber"] == 314


@pytest.mark.parametrize("logical", list(FORMS))
def test_the_unique_index_of_the_file_refuses_a_second_entry_with_the_same_key(
    served: tuple[SimRemedyState, httpx.Client], logical: str
) -> None:
    _state, http = served
    form = FORMS[logical]
    path = f"{ENTRY}/{quote(form.name)}"
    first = {f.name: _value(f, "k1") for f in form.fields if f.required}
    second = {**first, form.key: first[form.key] + "-other"}
    assert http.post(path, json={"values": first}).status_code == 201
    created = http.post(path, json={"values": second})
    assert created.status_code == 201, created.text
    again = http.post(path, json={"values": first})
    assert again.status_code == 400, again.text
    assert again.json()[0]["messageNumber"] == 382
    # An update that would take another entry's key is refused too; its own key is fine.
    entry_id = created.headers["Location"].rsplit("/", 1)[-1]
    taken = http.put(f"{path}/{entry_id}", json={"values": {form.key: first[form.key]}})
    assert taken.status_code == 400 and taken.json()[0]["messageNumber"] == 382
    kept = http.put(f"{path}/{entry_id}", json={"values": second})
    assert kept.status_code == 204, kept.text
    found = http.get(path, params={"q": f"'{form.key}' = \"{first[form.key]}\""})
    assert len(found.json()["entries"]) == 1


def test_sim_remedy_serves_the_forms_of_a_definition_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}

    def capture(asgi: Any, **options: Any) -> None:
        served["app"] = asgi  # uvicorn.run blocks: serve the app on a test port instead

    monkeypatch.setattr(uvicorn, "run", capture)
    assert _write(tmp_path).exit_code == 0
    sim = typer.Typer()
    sim.command("remedy")(serve)
    definition = tmp_path / DEF_FILE
    result = CliRunner().invoke(sim, ["--no-seed", "--definition", str(definition)])
    assert result.exit_code == 0, result.output
    assert f"Loaded {definition}: {', '.join(f.name for f in SESSION_FORMS)}" in result.output
    with serve_in_thread(served["app"]) as url, httpx.Client(base_url=url) as http:
        login = http.post(
            "/api/jwt/login", data={"username": INTEGRATION[0], "password": INTEGRATION[1]}
        )
        values = {f.name: _value(f, "cli") for f in SESSION.fields if f.required}
        created = http.post(
            f"{ENTRY}/{quote(SESSION.name)}",
            json={"values": values},
            headers={"Authorization": f"AR-JWT {login.text}"},
        )
        assert created.status_code == 201, created.text


def test_sim_remedy_names_a_definition_file_it_cannot_read(tmp_path: Path) -> None:
    broken = tmp_path / "broken.def"
    broken.write_text("begin schema\n   name : X\n", encoding="utf-8")
    sim = typer.Typer()
    sim.command("remedy")(serve)
    for path in (broken, tmp_path / "missing.def"):
        result = CliRunner().invoke(sim, ["--definition", str(path)])
        assert result.exit_code == 1
        assert f"error: {path}:" in result.output
