"""Seeded, realistic support sessions for the simulated appliance, tests and benchmarks.

:class:`SessionGenerator` turns a seed into an endless, reproducible series of
:class:`~rsbridge.appliance.report_model.SupportSession` objects that look like what a
busy appliance reports: attended and Jump sessions, several customers and
representatives, invitations and transfers, chat in many scripts (with the odd control
character that only ``encoded_body`` can carry), file transfers, system information,
registry edits, recordings, exit surveys and the external keys / custom attributes the
ticketing integrations associate sessions by.

Every value respects what the report XML can carry back exactly: UTC times in whole
seconds, ``None`` rather than empty or ``Unknown`` strings, identifier keys in mappings,
no surrounding whitespace, and event actors that resolve to the session's customers and
representatives (the system actor is ``Actor("system", <site name>, 0)``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from rsbridge.appliance.custom_fields import custom_field_params
from rsbridge.appliance.report_model import (
    Actor,
    CustomAttribute,
    Customer,
    Endpoint,
    EventType,
    ExitSurvey,
    JumpGroup,
    NamedRef,
    PrimaryCustomer,
    PrimaryRep,
    Recording,
    Representative,
    SessionEvent,
    SupportSession,
    SurveyAnswer,
    SystemInfoCategory,
)

DEFAULT_START = datetime(2024, 12, 2, 8, 0, tzinfo=UTC)
"""Start time of the first generated session unless ``start`` is given."""

PRESTART_OWNER = "Pre-start Conference"
"""Owner the appliance reports before a representative takes the session."""

# --- content pools ----------------------------------------------------------------

_CUSTOMER_NAMES = (
    ("José García", "jgarcia"),
    ("Zoë Dubois", "zdubois"),
    ("Björn Svensson", "bsvensson"),
    ("Siobhán O'Brien", "sobrien"),
    ("陈美玲", "mchen"),
    ("中村 浩", "hnakamura"),
    ("فاطمة حداد", "fhaddad"),
    ("Noah Cohen", "ncohen"),
    ("Łukasz Nowak", "lnowak"),
    ("Kwame Mensah", "kmensah"),
    ("Ravi Iyer", "riyer"),
    ("Émilie Lefèvre", "elefevre"),
    ("John Doe", "jdoe"),
    ("Ahmet Yılmaz", "ayilmaz"),  # noqa: RUF001
)
_REP_NAMES = (
    ("Alice Martin", "amartin"),
    ("Bruno Costa", "bcosta"),
    ("Chloé Bernard", "cbernard"),
    ("Dmitri Volkov", "dvolkov"),
    ("Emma Schulz", "eschulz"),
    ("Farid Benali", "fbenali"),
    ("Grace Lee", "glee"),
    ("Hannah Weiß", "hweiss"),
    ("Inês Duarte", "iduarte"),
    ("Jun Park", "jpark"),
)
_TEAMS = (
    ("Service Desk L1", "1"),
    ("Desktop Support L2", "2"),
    ("Network Operations", "3"),
    ("Équipe Paris", "4"),
)
_COMPANIES = (
    "Acme Corp",
    "Globex",
    "Initech",
    "Müller & Söhne GmbH",
    "株式会社サンプル",
    "Umbrella",
)
_ISSUES = ("Printing", "VPN", "E-mail", "Password reset", "Software installation", "Hardware")
_DETAILS = (
    "I need support",
    "Printer on floor 3 shows a paper jam that is not there.",
    "Outlook asks for my password every five minutes.",
    "Le VPN se déconnecte toutes les 10 minutes.",
    "ノートPCが起動しません。",  # noqa: RUF001
    "Need Visio installed for the Q4 project 📊",
)
_WINDOWS_OS = (
    "Windows 10 Enterprise (x64) Version 22H2 (Build 19045)",
    "Windows 11 Pro (x64) Version 23H2 (Build 22631)",
)
_OTHER_OS = ("macOS 14.6.1 Sonoma", "Ubuntu 22.04.4 LTS")
_SERVER_OS = (
    "Windows Server 2022 Standard (x64)",
    "Red Hat Enterprise Linux 9.4 (Plow)",
    "Ubuntu 24.04.1 LTS",
)
_SERVERS = ("SRV-DB-01", "SRV-FILE-02", "web-prod-03", "dc01.corp.example.com", "k8s-node-7")
_JUMPOINTS = (("JP-Paris-DC1", "3"), ("JP-Frankfurt", "5"), ("JP-Tokyo", "8"))
_JUMP_GROUPS = (("Datacenter Servers", "2"), ("Branch Offices", "6"))
_PUBLIC_PREFIXES = ("4.231.237", "81.2.69", "89.160.20", "175.16.199", "216.160.83", "2.125.160")

_CUSTOMER_LINES = (
    "Hi, my printer stopped working after the update.",
    "Bonjour, je n'arrive plus à me connecter au VPN.",
    "Das Outlook-Postfach ist voll, können Sie helfen?",
    "プリンターが印刷できません。",
    "我的电脑很慢，请帮忙看一下。",  # noqa: RUF001
    "مرحبا، لا أستطيع الوصول إلى البريد الإلكتروني",
    "שלום, הסיסמה שלי פגה",
    "It shows error 0x80070005 😕",
    "¿Puede revisar la impresora del tercer piso?",
    "OK, I've closed all my applications.",
    "Yes, go ahead.",
    "Ça marche maintenant, merci beaucoup ! 🎉",
    "Thanks! 🙏",
)
_REP_LINES = (
    "Hello, I'm taking over your request.",
    "Could you accept the screen sharing prompt, please?",
    "I'm going to restart the print spooler.",
    "Bonjour, je regarde ça tout de suite.",
    "少々お待ちください。",
    "Please save your work, I need to reboot.",
    "The update is installed, can you try again?",
    "Is there anything else I can help with? 🙂",
)
_CONTROL_LINES = (
    "Terminal output: \x1b[31mFAILED\x1b[0m at step 3",
    "Copied from console:\x07 beep then done",
    "Progress\x1b[2K 100% complete",
)
_NOTE_LINES = (
    "Cleared print queue and restarted spooler.",
    "Customer confirmed the issue is resolved.",
    "Escalated to network team: VPN drops on Wi-Fi only.",
    "Mot de passe réinitialisé, MFA réenrôlé.",
    "Driver 5.1.2 installed from vendor site.",
)
_SURVEY_COMMENTS = (
    "Great support, thank you!",
    "Très rapide et efficace.",
    "Took a while to get connected.",
    "とても親切でした。",
    "Fixed in 5 minutes 👍",
)
_FILE_NAMES = (
    "report.xlsx",
    "résumé.docx",
    "報告書.pdf",
    "install.log",
    "setup.msi",
    "config.yaml",
    "driver-5.1.2.zip",
)
_WINDOWS_DIRS = (
    "C:\\Users\\{user}\\Documents",
    "C:\\Users\\{user}\\Desktop",
    "C:\\Windows\\Temp",
    "D:\\Shared\\Finance\\2024",
)
_UNIX_DIRS = ("/home/{user}", "/home/{user}/Téléchargements", "/var/log", "/srv/share", "/opt/app")
_WINDOWS_PROCESSES = (
    ("explorer.exe", "C:\\Windows\\explorer.exe"),
    ("svchost.exe", "C:\\Windows\\System32\\svchost.exe"),
    ("chrome.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"),
    ("OUTLOOK.EXE", "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"),
    ("Teams.exe", "C:\\Users\\Public\\AppData\\Local\\Microsoft\\Teams\\Teams.exe"),
    ("bomgar-scc.exe", "C:\\ProgramData\\bomgar-scc-0x5f1e2c\\bomgar-scc.exe"),
)
_UNIX_PROCESSES = (
    ("systemd", "/usr/lib/systemd/systemd"),
    ("sshd", "/usr/sbin/sshd"),
    ("nginx", "/usr/sbin/nginx"),
    ("python3", "/usr/bin/python3"),
    ("postgres", "/usr/lib/postgresql/16/bin/postgres"),
)
_SERVICES = (
    ("Spooler", "Print Spooler"),
    ("wuauserv", "Windows Update"),
    ("Dnscache", "DNS Client"),
    ("W32Time", "Windows Time"),
    ("WinDefend", "Microsoft Defender Antivirus Service"),
)
_PROGRAMS = (
    ("Microsoft 365 Apps for enterprise", "Microsoft Corporation", "16.0.17928.20156"),
    ("Google Chrome", "Google LLC", "131.0.6778.86"),
    ("7-Zip 24.08 (x64)", "Igor Pavlov", "24.08"),
    ("Adobe Acrobat Reader", "Adobe Inc.", "24.004.20220"),
    ("GlobalProtect", "Palo Alto Networks", "6.2.4"),
)
_REGISTRY_KEYS = (
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate",
    "HKEY_CURRENT_USER\\Software\\Microsoft\\Office\\16.0\\Outlook\\AutoDiscover",
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Spooler",
)
_WINDOWS = (
    ("WINWORD.EXE", "Report Q4.docx - Word"),
    ("chrome.exe", "Intranet – Accueil - Google Chrome"),  # noqa: RUF001
    ("mmc.exe", "Device Manager"),
)
# Event types seen in PRA data but not among the 53 Remote Support ones.
_UNKNOWN_EVENTS = (
    ("Session Mouse Left Clicked", ("x", "y")),
    ("Special Action Executed", ("action",)),
    ("Session Window Closed", ("windowName",)),
)
_CUSTOM_DISPLAY_NAMES = {
    "snow_task_id": "ServiceNow Task ID",
    "snow_cmdb_ci_id": "ServiceNow CI ID",
    "snow_call_id": "ServiceNow Call ID",
    "snow_interaction_id": "ServiceNow Interaction ID",
    "ticket_id": "Ticket",
    "sf_case_id": "Salesforce Case ID",
}
_TICKET_NUMBER = re.compile(r"[A-Z]{3,5}\d{7}")
_TRANSFER_TYPES = frozenset({EventType.FILE_UPLOAD, EventType.FILE_DOWNLOAD})


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _alnum(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(length))


def _public_ip(rng: random.Random) -> Endpoint:
    port = rng.randint(1025, 65535)
    if rng.random() < 0.15:
        return Endpoint("2a01:e34:" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(6)), port)
    return Endpoint(f"{rng.choice(_PUBLIC_PREFIXES)}.{rng.randint(1, 254)}", port)


def _private_ip(rng: random.Random) -> Endpoint:
    if rng.random() < 0.5:
        return Endpoint(f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}")
    return Endpoint(f"192.168.{rng.randint(0, 15)}.{rng.randint(2, 254)}")


def _ticket_number(rng: random.Random, prefix: str = "INC") -> str:
    return f"{prefix}{rng.randint(10001, 99999):07d}"


def _display_name(code_name: str) -> str:
    return _CUSTOM_DISPLAY_NAMES.get(code_name) or code_name.replace("_", " ").title()


def _random_key(rng: random.Random) -> tuple[str | None, dict[str, str]]:
    """An external key and custom attributes, as the ticketing integrations set them."""
    kind = rng.choices(("none", "inc", "chg", "sys_id", "sf"), weights=(25, 25, 10, 20, 20))[0]
    if kind == "none":
        return None, {}
    if kind == "sf":
        number = f"{rng.randint(1000, 99999):08d}"
        return number, {"sf_case_id": "5003h00001" + _alnum(rng, 5)}
    custom: dict[str, str] = {}
    if kind == "sys_id":
        key = custom["snow_task_id"] = _hex(rng, 32)
    else:
        key = custom["ticket_id"] = _ticket_number(rng, kind.upper())
        custom["snow_task_id"] = _hex(rng, 32)
    if rng.random() < 0.5:
        custom["snow_cmdb_ci_id"] = _hex(rng, 32)
    return key, custom


@dataclass(frozen=True, slots=True)
class _RepProfile:
    id: str
    name: str
    username: str
    team: tuple[str, str]
    hostname: str | None
    os: str | None


@dataclass(frozen=True, slots=True)
class _Options:
    hostname: str
    site: str
    chat_messages: tuple[int, int]
    system_info_rows: tuple[int, int]
    system_info_ratio: float
    jump_ratio: float
    include_unknown_events: bool


@dataclass(frozen=True, slots=True)
class _Key:
    external_key: str | None
    custom: Mapping[str, str]
    info: Mapping[str, str] | None = None


class SessionGenerator:
    """Deterministic generator of realistic ended support sessions.

    The same ``seed`` and options always give the same series: all randomness comes
    from a private :class:`random.Random`. Sessions follow each other in time (``lseq``
    and ``start_time`` increase) and each one is complete (it has ended).

    Args:
        seed: seed of the series.
        hostname: appliance host name used in the chat and recording URLs.
        start: start time of the first session (tz-aware; rounded down to the second).
        site_name: public site name, also the name of the system actor.
        large: benchmark-sized sessions (hundreds of chat messages and system
            information rows, roughly 250 KB of report XML each).
        chat_messages: (min, max) chat messages per session; overrides ``large``.
        system_info_rows: (min, max) rows of the Processes category; Services and
            Installed Programs get half and a third as many. Overrides ``large``.
        jump_ratio: share of Jump sessions (started by a rep on an unattended endpoint).
        include_unknown_events: also emit a few events with types that are not among
            the 53 documented ones, to prove consumers keep them.
    """

    def __init__(
        self,
        seed: int,
        *,
        hostname: str = "support.example.com",
        start: datetime = DEFAULT_START,
        site_name: str = "Default",
        large: bool = False,
        chat_messages: tuple[int, int] | None = None,
        system_info_rows: tuple[int, int] | None = None,
        jump_ratio: float = 0.3,
        include_unknown_events: bool = False,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._rng = random.Random(seed)
        self._clock = start.astimezone(UTC).replace(microsecond=0)
        self._lseq = 0
        self._options = _Options(
            hostname=hostname,
            site=site_name,
            chat_messages=chat_messages or ((250, 450) if large else (2, 24)),
            system_info_rows=system_info_rows or ((250, 400) if large else (5, 40)),
            system_info_ratio=1.0 if large else 0.5,
            jump_ratio=jump_ratio,
            include_unknown_events=include_unknown_events,
        )
        self._roster = [self._rep_profile(i, *names) for i, names in enumerate(_REP_NAMES)]

    def _rep_profile(self, index: int, name: str, username: str) -> _RepProfile:
        rng = self._rng
        web_console = rng.random() < 0.2
        return _RepProfile(
            id=str(index + 2),
            name=name,
            username=username,
            team=rng.choice(_TEAMS),
            hostname=None if web_console else f"WS-{username.upper()}",
            os=None if web_console else rng.choice((*_WINDOWS_OS, _OTHER_OS[0])),
        )

    def session(self) -> SupportSession:
        """The next session of the series, with a random external key and attributes."""
        return self._build(_Key(*_random_key(self._rng)))

    def sessions(self, n: int) -> Iterator[SupportSession]:
        """The next ``n`` sessions of the series."""
        for _ in range(n):
            yield self.session()

    def session_from_key(
        self,
        external_key: str | None = None,
        custom_attributes: Mapping[str, str] | None = None,
        *,
        customer_info: Mapping[str, str] | None = None,
    ) -> SupportSession:
        """The next session, started from a key generated with these values.

        ``custom_attributes`` maps code names to values; ``customer_info`` (keys
        ``name``, ``company``, ``company_code``, ``issue``, ``details``) replaces the
        primary customer's front-end survey answers. Empty values are not reported.
        The session is attended (not a Jump session).

        Raises:
            ClientScriptError: the values break the appliance's custom field limits.
        """
        custom = dict(custom_attributes or {})
        custom_field_params(custom, external_key=external_key)
        return self._build(
            _Key(external_key or None, {k: v for k, v in custom.items() if v}, customer_info),
            jump=False,
        )

    def _build(self, key: _Key, jump: bool | None = None) -> SupportSession:
        rng = random.Random(self._rng.getrandbits(64))
        self._lseq += 1
        start = self._clock
        self._clock += timedelta(seconds=self._rng.randint(30, 1200))
        if jump is None:
            jump = rng.random() < self._options.jump_ratio
        builder = _SessionBuilder(rng, self._options, self._lseq, start, jump=jump)
        return builder.build(key, rng.sample(self._roster, k=4))


class _SessionBuilder:
    """Builds one session; the event stream is written in time order as it goes."""

    def __init__(
        self, rng: random.Random, options: _Options, lseq: int, start: datetime, *, jump: bool
    ) -> None:
        self.rng = rng
        self.options = options
        self.jump = jump
        self.now = start
        self.system = Actor("system", options.site, 0)
        self.session = SupportSession(
            lsid=_hex(rng, 32),
            lseq=lseq,
            start_time=start,
            public_site=NamedRef(options.site, "1"),
        )
        self.url_hash = _hex(rng, 40)
        self.windows = True
        self.next_gsnumber = rng.randint(2, 40)
        self.owner = self.system
        self.customer = self.system
        self.present_customers: list[Actor] = []
        self.present_reps: list[Actor] = []
        self.joined: dict[int, datetime] = {}
        self.customers: dict[int, Customer] = {}
        self.reps: dict[int, Representative] = {}
        self.rep_teams: dict[int, tuple[str, str]] = {}

    # --- plumbing ---------------------------------------------------------------------

    def tick(self, high: int = 40, low: int = 0) -> None:
        self.now += timedelta(seconds=self.rng.randint(low, high))

    def emit(
        self,
        event_type: str,
        *,
        by: Actor | None = None,
        to: Actor | None = None,
        data: Mapping[str, str | None] | None = None,
        body: str | None = None,
        filename: str | None = None,
        filesize: int | None = None,
        system_information: list[SystemInfoCategory] | None = None,
    ) -> None:
        self.session.events.append(
            SessionEvent(
                timestamp=self.now,
                event_type=str(event_type),
                performed_by=by,
                destination=to,
                body=body,
                filename=filename,
                filesize=filesize,
                data={k: v for k, v in (data or {}).items() if v is not None},
                system_information=system_information,
            )
        )

    def gsnumber(self) -> int:
        self.next_gsnumber += 1
        return self.next_gsnumber

    def pick_rep(self) -> Actor:
        return self.owner if self.rng.random() < 0.7 else self.rng.choice(self.present_reps)

    def pick_customer(self) -> Actor:
        return self.rng.choice(self.present_customers)

    def download_url(self, medium: str, action: str, *, view: bool, extra: str = "") -> str:
        # Only the chat form is taken from real reports; recordings follow the same shape.
        url = (
            f"https://{self.options.hostname}/session_download?lsid=l%3D{self.session.lsid}"
            f"%3Bh%3D{self.url_hash}%3Bt%3Dsd%3Bm%3D{medium}&dl_action={action}{extra}"
        )
        return url + "&view=1" if view else url

    def path(self) -> str:
        user = self.session.customers[0].username or "user"
        name = self.rng.choice(_FILE_NAMES)
        if self.windows:
            return self.rng.choice(_WINDOWS_DIRS).format(user=user) + "\\" + name
        return self.rng.choice(_UNIX_DIRS).format(user=user) + "/" + name

    def text(self, lines: tuple[str, ...]) -> str:
        if self.rng.random() < 0.03:
            return self.rng.choice(_CONTROL_LINES)
        count = 1 if self.rng.random() < 0.85 else self.rng.randint(2, 3)
        return "\n".join(self.rng.choice(lines) for _ in range(count))

    # --- people -----------------------------------------------------------------------

    def add_customer(self, info: Mapping[str, str] | None, *, primary: bool) -> Actor:
        rng = self.rng
        gs = self.gsnumber()
        if self.jump:
            hostname = rng.choice(_SERVERS)
            os_name = rng.choice(_SERVER_OS)
            username = rng.choice(("SYSTEM", "root", "Administrator"))
            info = {}
        else:
            full_name, username = rng.choice(_CUSTOMER_NAMES)
            os_name = rng.choice(_WINDOWS_OS if rng.random() < 0.75 else _OTHER_OS)
            hostname = f"{rng.choice(('LAPTOP', 'DESKTOP', 'WS'))}-{_alnum(rng, 7)}"
            info = (
                self.survey_info(full_name)
                if info is None
                else {k: v for k, v in info.items() if v}
            )
        if primary:
            self.windows = os_name.startswith("Windows")
        customer = Customer(
            gsnumber=gs,
            username=username,
            public_ip=_public_ip(rng),
            private_ip=_private_ip(rng) if rng.random() < 0.9 else None,
            hostname=hostname,
            os=os_name if rng.random() < 0.95 else None,
            primary=primary,
            info=info,
        )
        self.session.customers.append(customer)
        self.customers[gs] = customer
        actor = Actor("customer", info.get("name") or hostname, gs)
        if primary:
            self.session.primary_customer = PrimaryCustomer(actor.name, gs)
        return actor

    def survey_info(self, full_name: str) -> dict[str, str]:
        rng = self.rng
        answers = {
            "name": full_name if rng.random() < 0.95 else None,
            "company": rng.choice(_COMPANIES) if rng.random() < 0.7 else None,
            "company_code": str(rng.randint(1000, 9999)) if rng.random() < 0.4 else None,
            "issue": rng.choice(_ISSUES) if rng.random() < 0.8 else None,
            "details": rng.choice(_DETAILS) if rng.random() < 0.6 else None,
        }
        return {k: v for k, v in answers.items() if v is not None}

    def add_rep(self, profile: _RepProfile, *, invited: bool = False) -> Actor:
        gs = self.gsnumber()
        rep = Representative(
            gsnumber=gs,
            id=profile.id,
            username=profile.username,
            display_name=profile.name,
            public_display_name=profile.name.split()[0],
            private_display_name=profile.name,
            public_ip=_public_ip(self.rng) if self.rng.random() < 0.9 else None,
            private_ip=_private_ip(self.rng) if profile.hostname else None,
            hostname=profile.hostname,
            os=profile.os,
            invited=invited,
        )
        self.session.representatives.append(rep)
        self.reps[gs] = rep
        self.rep_teams[gs] = profile.team
        return Actor("representative", profile.name, gs)

    def member_data(self, gs: int) -> dict[str, str | None]:
        if gs in self.reps:
            r = self.reps[gs]
            return {
                "private_name": r.private_display_name,
                "public_name": r.public_display_name,
                "username": r.username,
                "user_id": r.id,
                "support_teams": self.rep_teams[gs][0],
                "public_ip": str(r.public_ip) if r.public_ip else None,
                "private_ip": str(r.private_ip) if r.private_ip else None,
                "hostname": r.hostname,
                "os": r.os,
            }
        c = self.customers[gs]
        return {
            "private_name": c.info.get("name") or c.hostname,
            "public_name": c.info.get("name") or c.hostname,
            "username": c.username,
            "public_ip": str(c.public_ip) if c.public_ip else None,
            "private_ip": str(c.private_ip) if c.private_ip else None,
            "hostname": c.hostname,
            "os": c.os,
        }

    def join(self, member: Actor, *, by: Actor) -> None:
        assert member.gsnumber is not None
        self.emit(
            EventType.CONFERENCE_MEMBER_ADDED,
            by=by,
            to=member,
            data=self.member_data(member.gsnumber),
        )
        self.joined[member.gsnumber] = self.now
        present = self.present_reps if member.type == "representative" else self.present_customers
        present.append(member)

    def depart(self, member: Actor) -> None:
        assert member.gsnumber is not None
        self.emit(EventType.CONFERENCE_MEMBER_DEPARTED, by=self.system, to=member)
        if member.type == "representative":
            self.present_reps.remove(member)
            seconds = (self.now - self.joined[member.gsnumber]).total_seconds()
            self.reps[member.gsnumber].seconds_involved = int(seconds)
        else:
            self.present_customers.remove(member)

    def take_ownership(self, rep: Actor) -> None:
        assert rep.gsnumber is not None
        self.emit(EventType.CONFERENCE_OWNER_CHANGED, to=rep, data={"owner": rep.name})
        record = self.reps[rep.gsnumber]
        record.session_owner = True
        if self.session.primary_rep is None:
            record.primary = True
            self.session.primary_rep = PrimaryRep(rep.name, rep.gsnumber, record.id)
        self.owner = rep

    # --- the session ------------------------------------------------------------------

    def build(self, key: _Key, profiles: list[_RepProfile]) -> SupportSession:
        s = self.session
        s.external_key = key.external_key
        s.custom_attributes = [
            CustomAttribute(code, _display_name(code), value) for code, value in key.custom.items()
        ]
        s.chat_view_url = self.download_url("chat", "chat", view=True)
        s.chat_download_url = self.download_url("chat", "chat", view=False)
        self.emit(EventType.SESSION_START)
        self.emit(
            EventType.CONFERENCE_OWNER_CHANGED, to=self.system, data={"owner": PRESTART_OWNER}
        )
        self.customer = self.add_customer(key.info, primary=True)
        rep = self.add_rep(profiles[0])
        if self.jump:
            self.jump_start(self.customer, rep, profiles[0])
        else:
            self.attended_start(self.customer, rep)
        self.body(profiles[1:])
        self.finish(key)
        return s

    def attended_start(self, customer: Actor, rep: Actor) -> None:
        self.join(customer, by=self.system)
        if self.rng.random() < 0.5:
            self.tick(20)
            self.emit(EventType.LEGAL_AGREEMENT_RESPONSE, by=customer, data={"message": "Accepted"})
        self.tick(300, 5)
        self.emit(EventType.SESSION_ASSIGNED, by=self.system, to=rep, data={"priority": "2"})
        self.tick(30)
        self.emit(EventType.SESSION_ASSIGNMENT_RESPONSE, by=rep, data={"message": "Accepted"})
        self.join(rep, by=rep)
        self.take_ownership(rep)

    def jump_start(self, customer: Actor, rep: Actor, profile: _RepProfile) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            self.session.jumpoint = NamedRef(*rng.choice(_JUMPOINTS))
        if rng.random() < 0.3:
            self.session.jump_group = JumpGroup(profile.name, None, "personal")
        else:
            self.session.jump_group = JumpGroup(*rng.choice(_JUMP_GROUPS), "shared")
        if rng.random() < 0.3:
            self.emit(
                EventType.JUMP_ITEM_AUTHORIZATION_REQUEST,
                by=rep,
                data={"message": f"Change {_ticket_number(rng, 'CHG')} approved"},
            )
            self.tick(120, 10)
            self.emit(EventType.JUMP_ITEM_AUTHORIZATION_REQUEST_UTILIZED, by=rep)
        self.join(rep, by=rep)
        self.take_ownership(rep)
        self.tick(10)
        self.join(customer, by=self.system)
        if rng.random() < 0.4:
            self.credential_injection(rep)

    def body(self, spare: list[_RepProfile]) -> None:
        rng = self.rng
        activities: list[Callable[[], None]] = [self.chat] * rng.randint(
            *self.options.chat_messages
        )
        activities += [self.note] * rng.randint(0, 3)
        activities += [self.file_event] * rng.choice((0, 0, 1, 2, 4, 8))
        if rng.random() < self.options.system_info_ratio:
            activities.append(self.system_info)
        if self.windows:
            activities += [self.registry] * rng.choice((0, 0, 1, 3))
        extras = [
            self.screenshot,
            self.screen_recording,
            self.command_shell,
            self.state_changed,
            self.service_access,
        ]
        if self.windows:
            extras.append(self.foreground_window)
        activities += rng.sample(extras, k=rng.randint(0, len(extras)))
        activities += [partial(self.invite, p) for p in spare[: rng.choice((0, 0, 0, 1, 2))]]
        if rng.random() < 0.15:
            activities.append(partial(self.transfer, spare[-1]))
        if not self.jump and rng.random() < 0.08:
            activities.append(self.guest)
        if self.options.include_unknown_events:
            activities += [self.unknown_event] * rng.randint(0, 2)
        rng.shuffle(activities)
        for activity in activities:
            self.tick()
            activity()

    def finish(self, key: _Key) -> None:
        self.tick(60, 5)
        for member in [*self.present_customers, *self.present_reps]:
            if member != self.owner:
                self.depart(member)
                self.tick(5)
        self.depart(self.owner)
        self.surveys(key)
        self.tick(3)
        self.emit(EventType.SESSION_END)
        s = self.session
        s.end_time = self.now
        assert s.start_time is not None
        s.duration = s.end_time - s.start_time
        s.file_transfer_count = len(s.events_of(*_TRANSFER_TYPES))
        s.file_move_count = len(s.events_of(EventType.FILE_MOVED))
        s.file_delete_count = len(s.events_of(EventType.FILE_DELETED))
        teams = dict.fromkeys(self.rep_teams.values())
        s.teams = [NamedRef(name, team_id) for name, team_id in teams]

    def surveys(self, key: _Key) -> None:
        rng = self.rng
        if not self.jump and rng.random() < 0.45:
            answers = [SurveyAnswer("rating", str(rng.randint(1, 5)))]
            if rng.random() < 0.6:
                answers.append(SurveyAnswer("comments", rng.choice(_SURVEY_COMMENTS)))
            self.session.customer_surveys.append(ExitSurvey(self.customer.gsnumber, answers))
            self.emit(EventType.CUSTOMER_EXIT_SURVEY, by=self.customer)
        # The rep survey's task_number is how sessions without an external key find their
        # ticket, so it is likelier then.
        if rng.random() < (0.7 if key.external_key is None else 0.4):
            task = key.external_key
            if task is None or not _TICKET_NUMBER.fullmatch(task):
                task = _ticket_number(rng)
            answers = [
                SurveyAnswer("task_number", task),
                SurveyAnswer("resolution", rng.choice(("Resolved", "Escalated", "No answer"))),
            ]
            if rng.random() < 0.3:
                answers.append(SurveyAnswer("comments", rng.choice(_NOTE_LINES)))
            self.session.rep_surveys.append(ExitSurvey(self.owner.gsnumber, answers))
            self.emit(EventType.REPRESENTATIVE_EXIT_SURVEY, by=self.owner)

    # --- activities -------------------------------------------------------------------

    def chat(self) -> None:
        roll = self.rng.random()
        if not self.jump and roll < 0.45:
            by, to = self.pick_customer(), self.owner
        elif len(self.present_reps) > 1 and roll < 0.55:
            by = self.pick_rep()
            to = self.rng.choice([r for r in self.present_reps if r != by])
        else:
            by, to = self.pick_rep(), self.customer
        lines = _CUSTOMER_LINES if by.type == "customer" else _REP_LINES
        self.emit(EventType.CHAT_MESSAGE, by=by, to=to, body=self.text(lines))

    def note(self) -> None:
        body = "\n".join(self.rng.sample(_NOTE_LINES, k=self.rng.randint(1, 2)))
        self.emit(EventType.SESSION_NOTE_ADDED, by=self.pick_rep(), body=body)

    def file_event(self) -> None:
        rng = self.rng
        kind = rng.choices(
            (
                EventType.FILE_UPLOAD,
                EventType.FILE_DOWNLOAD,
                EventType.FILE_UPLOAD_FAILED,
                EventType.FILE_DOWNLOAD_FAILED,
                EventType.FILE_DELETED,
                EventType.FILE_MOVED,
                EventType.DIRECTORY_CREATED,
                EventType.FILES_SHARED,
            ),
            weights=(30, 30, 5, 5, 10, 8, 5, 7),
        )[0]
        rep, customer = self.pick_rep(), self.pick_customer()
        size = int(10 ** rng.uniform(1, 8))
        if kind == EventType.FILE_MOVED:
            data = {"old_path": self.path(), "new_path": self.path()}
            self.emit(kind, by=rep, to=customer, data=data)
        elif kind in (EventType.FILE_DELETED, EventType.DIRECTORY_CREATED):
            self.emit(kind, by=rep, to=customer, filename=self.path())
        elif kind in (EventType.FILE_DOWNLOAD, EventType.FILE_DOWNLOAD_FAILED):
            self.emit(kind, by=customer, to=rep, filename=self.path(), filesize=size)
        else:
            self.emit(kind, by=rep, to=customer, filename=self.path(), filesize=size)

    def system_info(self) -> None:
        rows = self.rng.randint(*self.options.system_info_rows)
        categories = [self.overview(), self.network(), self.processes(rows)]
        if self.windows:
            categories += [self.services(max(1, rows // 2)), self.programs(max(1, rows // 3))]
        self.emit(
            EventType.SYSTEM_INFORMATION_RETRIEVED,
            by=self.pick_rep(),
            to=self.customer,
            system_information=categories,
        )

    def registry(self) -> None:
        rng = self.rng
        key_path = rng.choice(_REGISTRY_KEYS)
        kind = rng.choice(
            (
                EventType.REGISTRY_KEY_ADDED,
                EventType.REGISTRY_VALUE_ADDED,
                EventType.REGISTRY_VALUE_MODIFIED,
                EventType.REGISTRY_VALUE_DELETED,
                EventType.REGISTRY_EXPORTED,
            )
        )
        data: dict[str, str | None] = {"key_path": key_path}
        if kind == EventType.REGISTRY_KEY_ADDED:
            data = {"parent_path": key_path, "key_name": "AU", "key_path": key_path + "\\AU"}
        elif kind == EventType.REGISTRY_EXPORTED:
            data["path"] = "C:\\Windows\\Temp\\export.reg"
        else:
            data |= {"value_name": "NoAutoUpdate", "value_type": "REG_DWORD"}
            if kind == EventType.REGISTRY_VALUE_MODIFIED:
                data |= {"value_data_old": "0", "value_data_new": "1"}
            elif kind == EventType.REGISTRY_VALUE_ADDED:
                data["value_data"] = str(rng.randint(0, 1))
        self.emit(kind, by=self.pick_rep(), to=self.customer, data=data)

    def screenshot(self) -> None:
        name = f"Screenshot_{self.now:%Y%m%d_%H%M%S}.png"
        self.emit(
            EventType.SCREENSHOT_CAPTURED,
            by=self.pick_rep(),
            to=self.customer,
            data={"filename": name},
        )

    def screen_recording(self) -> None:
        self.session.recording = Recording(
            view_url=self.download_url("rec", "play", view=True),
            download_url=self.download_url("rec", "play", view=False),
        )
        self.emit(EventType.SCREEN_RECORDING, by=self.owner)

    def command_shell(self) -> None:
        recordings = self.session.command_shell_recordings
        for _ in range(self.rng.randint(1, 2)):
            instance = len(recordings)
            extra = f"&instance={instance}"
            view = self.download_url("shell", "shell", view=True, extra=extra)
            download = self.download_url("shell", "shell", view=False, extra=extra)
            recordings.append(Recording(view, download, instance))
            data = {"instance": str(instance), "download_url": download, "view_url": view}
            self.emit(EventType.COMMAND_SHELL_SESSION_STARTED, by=self.pick_rep(), data=data)
            self.tick(120, 10)

    def state_changed(self) -> None:
        state = self.rng.choice(("away", "active"))
        self.emit(
            EventType.CONFERENCE_MEMBER_STATE_CHANGED, to=self.pick_rep(), data={"state": state}
        )

    def service_access(self) -> None:
        service = self.rng.choice(("Screen Sharing", "File Transfer", "Command Shell"))
        data = {"granted_to": self.owner.name, "level": "Full Control", "service": service}
        self.emit(EventType.SERVICE_ACCESS_ALLOWED, by=self.customer, data=data)

    def foreground_window(self) -> None:
        exe, window = self.rng.choice(_WINDOWS)
        self.emit(
            EventType.SESSION_FOREGROUND_WINDOW_CHANGED,
            by=self.customer,
            data={"exeName": exe, "windowName": window},
        )

    def credential_injection(self, rep: Actor) -> None:
        data: dict[str, str | None] = {
            "attempt_id": str(self.rng.randint(1, 9999)),
            "credential_id": str(self.rng.randint(1, 99)),
            "credential_name": "CORP\\svc-support",
        }
        kind = EventType.CREDENTIAL_INJECTION_ATTEMPT
        if self.rng.random() < 0.2:
            kind = EventType.CREDENTIAL_INJECTION_ATTEMPT_FAILED
            data["failure_reason"] = "The credential could not be retrieved from the vault"
        self.tick(15)
        self.emit(kind, by=rep, data=data)

    def invite(self, profile: _RepProfile) -> None:
        self.join(self.add_rep(profile, invited=True), by=self.owner)

    def transfer(self, profile: _RepProfile) -> None:
        previous = self.owner
        rep = self.add_rep(profile)
        self.join(rep, by=previous)
        self.take_ownership(rep)
        self.tick(30)
        self.depart(previous)

    def guest(self) -> None:
        self.join(self.add_customer(None, primary=False), by=self.owner)

    def unknown_event(self) -> None:
        event_type, names = self.rng.choice(_UNKNOWN_EVENTS)
        data = {name: str(self.rng.randint(1, 1920)) for name in names}
        self.emit(event_type, by=self.pick_rep(), data=data)

    # --- system information categories -------------------------------------------------

    def overview(self) -> SystemInfoCategory:
        customer = self.session.customers[0]
        row = {
            "hostname": customer.hostname,
            "os": customer.os,
            "user": customer.username,
            "uptime": f"{self.rng.randint(0, 40)} days, {self.rng.randint(0, 23)} hours",
            "memory_mb": str(self.rng.choice((8192, 16384, 32768))),
        }
        columns = {
            "hostname": "Hostname",
            "os": "Operating System",
            "user": "Logged-in User",
            "uptime": "Uptime",
            "memory_mb": "Total Memory (MB)",
        }
        return SystemInfoCategory("Overview", columns, [{k: v for k, v in row.items() if v}])

    def network(self) -> SystemInfoCategory:
        columns = {
            "interface": "Interface",
            "mac": "MAC Address",
            "ipv4": "IPv4",
            "gateway": "Gateway",
        }
        rows = [
            {
                "interface": name,
                "mac": ":".join(f"{self.rng.getrandbits(8):02x}" for _ in range(6)),
                "ipv4": _private_ip(self.rng).ip,
                "gateway": "10.0.0.1",
            }
            for name in ("Ethernet0", "Wi-Fi")[: self.rng.randint(1, 2)]
        ]
        return SystemInfoCategory("Network", columns, rows)

    def processes(self, count: int) -> SystemInfoCategory:
        pool = _WINDOWS_PROCESSES if self.windows else _UNIX_PROCESSES
        columns = {
            "pid": "PID",
            "name": "Name",
            "user": "User",
            "cpu_time": "CPU Time",
            "memory_kb": "Memory (KB)",
            "path": "Path",
        }
        rows = []
        for _ in range(count):
            name, path = self.rng.choice(pool)
            rows.append(
                {
                    "pid": str(self.rng.randint(4, 65000)),
                    "name": name,
                    "user": self.rng.choice(("SYSTEM", "NETWORK SERVICE", "user")),
                    "cpu_time": f"00:{self.rng.randint(0, 59):02d}:{self.rng.randint(0, 59):02d}",
                    "memory_kb": str(self.rng.randint(500, 900_000)),
                    "path": path,
                }
            )
        return SystemInfoCategory("Processes", columns, rows)

    def services(self, count: int) -> SystemInfoCategory:
        columns = {"name": "Name", "display_name": "Display Name", "status": "Status"}
        rows = []
        for _ in range(count):
            name, display = self.rng.choice(_SERVICES)
            status = self.rng.choice(("Running", "Stopped"))
            rows.append({"name": name, "display_name": display, "status": status})
        return SystemInfoCategory("Services", columns, rows)

    def programs(self, count: int) -> SystemInfoCategory:
        columns = {"name": "Name", "publisher": "Publisher", "version": "Version"}
        rows = [dict(zip(columns, self.rng.choice(_PROGRAMS), strict=True)) for _ in range(count)]
        return SystemInfoCategory("Installed Programs", columns, rows)
