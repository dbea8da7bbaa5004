"""Object and field definitions of the simulated org, the standard objects, and describe.

Names are case-insensitive as in Salesforce: :class:`ObjectDef` keeps fields by lower-cased
name and the state keeps objects the same way; answers always use the defined spelling.
Field types are the REST describe types (``id``, ``string``, ``textarea``, ``reference``,
``boolean``, ``double``, ``int``, ``datetime``, ``date``, ``email``, ``phone``, ``url``,
``picklist``, ``base64``). The standard objects carry the fields an integration touches,
not the full platform set; key prefixes as the platform assigns them (500 Case, 003
Contact, 005 User, 001 Account, 00a CaseComment, 0D5 FeedItem, 068 ContentVersion, 069
ContentDocument, 06A ContentDocumentLink).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SYSTEM_FIELDS = (
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
)


@dataclass
class FieldDef:
    """One field. ``required``: must be given on create (not nillable, no default)."""

    name: str
    type: str = "string"
    label: str = ""
    length: int = 0
    required: bool = False
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    #: Name of the relationship from the referenced object back to this one.
    child_relationship: str | None = None
    picklist_values: tuple[str, ...] = ()
    #: A restricted picklist refuses values outside ``picklist_values``.
    restricted: bool = False
    default: Any = None
    auto_number: bool = False
    custom: bool = False
    #: The length counts UTF-8 bytes, not characters (``CaseComment.CommentBody``).
    byte_length: bool = False
    precision: int = 0
    scale: int = 0

    def __post_init__(self) -> None:
        if not self.label:
            self.label = _label(self.name)


@dataclass
class ObjectDef:
    """One sObject type: name, labels, key prefix and fields (by lower-cased name)."""

    name: str
    key_prefix: str
    label: str = ""
    label_plural: str = ""
    custom: bool = False
    name_field: str = "Name"
    fields: dict[str, FieldDef] = field(default_factory=dict)
    #: Auto-number display format of the name field (``{00000000}`` for CaseNumber).
    auto_number_format: str | None = None

    def __post_init__(self) -> None:
        if not self.label:
            self.label = _label(self.name)
        if not self.label_plural:
            self.label_plural = self.label + "s"

    def add(self, *fields: FieldDef) -> None:
        """Define (or redefine) fields."""
        for definition in fields:
            self.fields[definition.name.lower()] = definition

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` in any case."""
        return self.fields.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationship name is ``name`` (any case)."""
        lowered = name.lower()
        for definition in self.fields.values():
            if definition.relationship_name and definition.relationship_name.lower() == lowered:
                return definition
        return None


def _label(api_name: str) -> str:
    base = api_name.removesuffix("__c").removesuffix("Id") or api_name
    words = base.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def system_fields(owner: bool = True) -> list[FieldDef]:
    """The audit fields every object has (``OwnerId`` on owned objects)."""
    fields = [
        FieldDef("Id", "id", "Record ID", 18, createable=False, updateable=False),
        FieldDef("IsDeleted", "boolean", "Deleted", createable=False, updateable=False),
        FieldDef("CreatedDate", "datetime", "Created Date", createable=False, updateable=False),
        FieldDef(
            "CreatedById",
            "reference",
            "Created By ID",
            18,
            createable=False,
            updateable=False,
            reference_to=("User",),
            relationship_name="CreatedBy",
        ),
        FieldDef(
            "LastModifiedDate",
            "datetime",
            "Last Modified Date",
            createable=False,
            updateable=False,
        ),
        FieldDef(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            18,
            createable=False,
            updateable=False,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
        ),
        FieldDef(
            "SystemModstamp", "datetime", "System Modstamp", createable=False, updateable=False
        ),
    ]
    if owner:
        fields.append(
            FieldDef(
                "OwnerId",
                "reference",
                "Owner ID",
                18,
                reference_to=("User",),
                relationship_name="Owner",
            )
        )
    return fields


def _obj(
    name: str,
    prefix: str,
    fields: list[FieldDef],
    *,
    owner: bool = True,
    name_field: str = "Name",
    label: str = "",
    plural: str = "",
) -> ObjectDef:
    definition = ObjectDef(name, prefix, label, plural, name_field=name_field)
    definition.add(*system_fields(owner), *fields)
    return definition


def _ref(name: str, target: str, relationship: str, **kwargs: Any) -> FieldDef:
    return FieldDef(
        name,
        "reference",
        length=18,
        reference_to=(target,),
        relationship_name=relationship,
        **kwargs,
    )


CASE_STATUSES = ("New", "Working", "Escalated", "Closed")
CASE_ORIGINS = ("Phone", "Email", "Web")
PRIORITIES = ("High", "Medium", "Low")


def standard_objects() -> list[ObjectDef]:
    """Fresh definitions of the standard objects the simulator knows."""
    account = _obj(
        "Account",
        "001",
        [
            FieldDef("Name", length=255, required=True, label="Account Name"),
            FieldDef("Phone", "phone", length=40),
            FieldDef("Website", "url", length=255),
            FieldDef("Industry", "picklist", length=255, picklist_values=("Technology", "Retail")),
            FieldDef("Type", "picklist", length=255, picklist_values=("Customer", "Partner")),
            FieldDef("BillingCity", length=40),
        ],
    )
    contact = _obj(
        "Contact",
        "003",
        [
            FieldDef("FirstName", length=40),
            FieldDef("LastName", length=80, required=True),
            FieldDef("Name", length=121, label="Full Name", createable=False, updateable=False),
            FieldDef("Email", "email", length=80),
            FieldDef("Phone", "phone", length=40),
            FieldDef("Title", length=128),
            _ref(
                "AccountId", "Account", "Account", label="Account ID", child_relationship="Contacts"
            ),
        ],
    )
    user = _obj(
        "User",
        "005",
        [
            FieldDef("Username", length=80, required=True, unique=True),
            FieldDef("FirstName", length=40),
            FieldDef("LastName", length=80, required=True),
            FieldDef("Name", length=121, label="Full Name", createable=False, updateable=False),
            FieldDef("Email", "email", length=128, required=True),
            FieldDef("Alias", length=8, required=True),
            FieldDef("IsActive", "boolean", label="Active", default=True),
            FieldDef("FederationIdentifier", length=512),
        ],
        owner=False,
    )
    case = _obj(
        "Case",
        "500",
        [
            FieldDef(
                "CaseNumber",
                length=30,
                label="Case Number",
                createable=False,
                updateable=False,
                auto_number=True,
            ),
            FieldDef("Subject", length=255),
            FieldDef("Description", "textarea", length=32000),
            FieldDef(
                "Status", "picklist", length=255, picklist_values=CASE_STATUSES, default="New"
            ),
            FieldDef("Origin", "picklist", length=255, picklist_values=CASE_ORIGINS),
            FieldDef(
                "Priority", "picklist", length=255, picklist_values=PRIORITIES, default="Medium"
            ),
            FieldDef("Type", "picklist", length=255, picklist_values=("Problem", "Question")),
            FieldDef("IsClosed", "boolean", label="Closed", createable=False, updateable=False),
            FieldDef("ClosedDate", "datetime", createable=False, updateable=False),
            FieldDef("SuppliedEmail", "email", length=80, label="Web Email"),
            FieldDef("SuppliedName", length=80, label="Web Name"),
            _ref("ContactId", "Contact", "Contact", label="Contact ID", child_relationship="Cases"),
            _ref("AccountId", "Account", "Account", label="Account ID", child_relationship="Cases"),
        ],
        name_field="CaseNumber",
    )
    case.auto_number_format = "{00000000}"
    comment = _obj(
        "CaseComment",
        "00a",
        [
            _ref(
                "ParentId",
                "Case",
                "Parent",
                required=True,
                updateable=False,
                child_relationship="CaseComments",
            ),
            FieldDef("CommentBody", "textarea", length=4000, label="Body", byte_length=True),
            FieldDef("IsPublished", "boolean", label="Published", default=False),
        ],
        owner=False,
        name_field="Id",
        label="Case Comment",
    )
    feed = _obj(
        "FeedItem",
        "0D5",
        [
            FieldDef(
                "ParentId",
                "reference",
                length=18,
                reference_to=("Case", "Account", "Contact", "User"),
                relationship_name="Parent",
                child_relationship="Feeds",
                required=True,
                updateable=False,
            ),
            FieldDef("Body", "textarea", length=10000),
            FieldDef("Title", length=255),
            # Who sees the post: AllUsers, or InternalUsers only (object reference: FeedItem).
            FieldDef(
                "Visibility",
                "picklist",
                length=40,
                picklist_values=("AllUsers", "InternalUsers"),
                default="AllUsers",
            ),
            FieldDef(
                "Type",
                "picklist",
                length=40,
                picklist_values=("TextPost", "LinkPost"),
                default="TextPost",
            ),
            FieldDef("IsRichText", "boolean", default=False),
        ],
        owner=False,
        name_field="Id",
        label="Feed Item",
    )
    document = _obj(
        "ContentDocument",
        "069",
        [
            FieldDef("Title", length=255, createable=False),
            FieldDef("FileExtension", length=40, createable=False, updateable=False),
            FieldDef("FileType", length=20, createable=False, updateable=False),
            FieldDef("ContentSize", "int", createable=False, updateable=False),
            FieldDef(
                "LatestPublishedVersionId",
                "reference",
                length=18,
                reference_to=("ContentVersion",),
                relationship_name="LatestPublishedVersion",
                createable=False,
                updateable=False,
            ),
        ],
        name_field="Title",
        label="Content Document",
    )
    version = _obj(
        "ContentVersion",
        "068",
        [
            FieldDef("Title", length=255),
            FieldDef("PathOnClient", length=500, required=True, updateable=False),
            FieldDef("VersionData", "base64", updateable=False),
            FieldDef("Description", "textarea", length=1000),
            _ref(
                "ContentDocumentId",
                "ContentDocument",
                "ContentDocument",
                updateable=False,
            ),
            FieldDef(
                "FirstPublishLocationId",
                "reference",
                length=18,
                reference_to=("Case", "Account", "Contact", "User"),
                relationship_name="FirstPublishLocation",
                updateable=False,
            ),
            FieldDef("FileExtension", length=40, createable=False, updateable=False),
            FieldDef("FileType", length=20, createable=False, updateable=False),
            FieldDef("ContentSize", "int", createable=False, updateable=False),
            FieldDef("VersionNumber", length=20, createable=False, updateable=False),
            FieldDef("IsLatest", "boolean", createable=False, updateable=False),
        ],
        name_field="Title",
        label="Content Version",
    )
    link = _obj(
        "ContentDocumentLink",
        "06A",
        [
            _ref("ContentDocumentId", "ContentDocument", "ContentDocument", required=True),
            FieldDef(
                "LinkedEntityId",
                "reference",
                length=18,
                reference_to=("Case", "Account", "Contact", "User"),
                relationship_name="LinkedEntity",
                child_relationship="ContentDocumentLinks",
                required=True,
            ),
            FieldDef("ShareType", "picklist", length=40, picklist_values=("V", "C", "I")),
            FieldDef(
                "Visibility", "picklist", length=40, picklist_values=("AllUsers", "InternalUsers")
            ),
        ],
        owner=False,
        name_field="Id",
        label="Content Document Link",
    )
    return [account, contact, user, case, comment, feed, document, version, link, *setup_objects()]


def setup_objects() -> list[ObjectDef]:
    """Setup objects a package deploys (Object Reference: ApexPage, WebLink), for queries."""
    page = _obj(
        "ApexPage",
        "066",
        [
            FieldDef("Name", length=80, required=True),
            FieldDef("MasterLabel", length=80, label="Label"),
            FieldDef("ApiVersion", "double", precision=8, scale=1),
            FieldDef(
                "ControllerType",
                "picklist",
                length=40,
                picklist_values=("Not Specified", "Standard", "StandardSet", "Custom"),
            ),
            FieldDef("ControllerKey", length=255),
            FieldDef("Description", "textarea", length=255),
            FieldDef("Markup", "textarea", length=1_000_000),
            FieldDef("IsConfirmationTokenRequired", "boolean", default=False),
        ],
        owner=False,
        label="Visualforce Page",
    )
    web_link = _obj(
        "WebLink",
        "00b",
        [
            FieldDef("Name", length=240, required=True),
            FieldDef("MasterLabel", length=240),
            FieldDef("PageOrSobjectType", "picklist", length=40, required=True),
            FieldDef(
                "DisplayType",
                "picklist",
                length=40,
                picklist_values=("link", "button", "massActionButton"),
            ),
            FieldDef(
                "LinkType",
                "picklist",
                length=40,
                required=True,
                picklist_values=("url", "sControl", "javascript", "page", "flow"),
            ),
            FieldDef("OpenType", "picklist", length=40, required=True),
            FieldDef("Url", "textarea", length=4000),
            FieldDef("Description", "textarea", length=1000),
        ],
        owner=False,
        label="Custom Button or Link",
    )
    return [page, web_link]


def _field_describe(obj: ObjectDef, definition: FieldDef) -> dict[str, Any]:
    nillable = not definition.required and definition.type not in ("boolean", "id")
    return {
        "name": definition.name,
        "label": definition.label,
        "type": definition.type,
        "length": definition.length if definition.type != "reference" else 18,
        "precision": definition.precision,
        "scale": definition.scale,
        "custom": definition.custom,
        "nillable": nillable,
        "createable": definition.createable,
        "updateable": definition.updateable,
        "defaultedOnCreate": definition.default is not None
        or definition.name in SYSTEM_FIELDS
        or definition.auto_number,
        "externalId": definition.external_id,
        "unique": definition.unique,
        "idLookup": definition.name == "Id" or definition.external_id,
        "nameField": definition.name == obj.name_field,
        "autoNumber": definition.auto_number,
        "calculated": False,
        "filterable": definition.type not in ("textarea", "base64"),
        "sortable": definition.type not in ("textarea", "base64"),
        "referenceTo": list(definition.reference_to),
        "relationshipName": definition.relationship_name,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": value == definition.default,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in definition.picklist_values
        ],
        "defaultValue": definition.default if definition.type != "boolean" else None,
        "soapType": _SOAP_TYPES.get(definition.type, "xsd:string"),
    }


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "base64": "xsd:base64Binary",
}


def object_urls(obj: ObjectDef, version: str) -> dict[str, str]:
    """The ``urls`` map of describe answers."""
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "sobject": base,
        "describe": f"{base}/describe",
        "rowTemplate": f"{base}/{{ID}}",
    }


def global_entry(obj: ObjectDef, version: str) -> dict[str, Any]:
    """One entry of ``GET /sobjects`` (describeGlobal)."""
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "searchable": True,
        "retrieveable": True,
        "layoutable": True,
        "urls": object_urls(obj, version),
    }


def describe(obj: ObjectDef, version: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    """``GET /sobjects/{name}/describe`` (fields in definition order)."""
    entry = global_entry(obj, version)
    entry["fields"] = [_field_describe(obj, f) for f in obj.fields.values()]
    entry["childRelationships"] = children
    entry["recordTypeInfos"] = []
    return entry
