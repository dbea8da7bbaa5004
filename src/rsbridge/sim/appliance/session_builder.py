"""Builds one generated support session, event by event, in time order.

:class:`~.scenarios.SessionGenerator` decides what a session is (its key, its people,
Jump or attended); :class:`SessionBuilder` writes it out as a
:class:`~rsbridge.appliance.report_model.SupportSession` the report XML can carry exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from rsbridge.appliance.report_model import (
    Actor,
    CustomAttribute,
    Customer,
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
from rsbridge.sim.appliance.seed_data import (
    COMPANIES,
    CONTROL_LINES,
    CUSTOMER_LINES,
    CUSTOMER_NAMES,
    DETAILS,
    FILE_NAMES,
    ISSUES,
    JUMP_GROUPS,
    JUMPOINTS,
    NOTE_LINES,
    OTHER_OS,
    PRESTART_OWNER,
    PROGRAMS,
    REGISTRY_KEYS,
    REP_LINES,
    SERVER_OS,
    SERVERS,
    SERVICES,
    SURVEY_COMMENTS,
    TICKET_NUMBER,
    TRANSFER_TYPES,
    UNIX_DIRS,
    UNIX_PROCESSES,
    UNKNOWN_EVENTS,
    WINDOWS,
    WINDOWS_DIRS,
    WINDOWS_OS,
    WINDOWS_PROCESSES,
    custom_display_name,
    random_alnum,
    random_hex,
    random_private_ip,
    random_public_ip,
    random_ticket_number,
)


@dataclass(frozen=True, slots=True)
class RepProfile:
    id: str
    name: str
    username: str
    team: tuple[str, str]
    hostname: str | None
    os: str | None


@dataclass(frozen=True, slots=True)
class GeneratorOptions:
    hostname: str
    site: str
    chat_messages: tuple[int, int]
    system_info_rows: tuple[int, int]
    system_info_ratio: float
    jump_ratio: float
    include_unknown_events: bool


@dataclass(frozen=True, slots=True)
class KeySpec:
    external_key: str | None
    custom: Mapping[str, str]
    info: Mapping[str, str] | None = None


class SessionBuilder:
    """Builds one session; the event stream is written in time order as it goes."""

    def __init__(
        self,
        rng: random.Random,
        options: GeneratorOptions,
        lseq: int,
        start: datetime,
        *,
        jump: bool,
    ) -> None:
        self.rng = rng
        self.options = options
        self.jump = jump
        self.now = start
        self.system = Actor("system", options.site, 0)
        self.session = SupportSession(
            lsid=random_hex(rng, 32),
            lseq=lseq,
            start_time=start,
            public_site=NamedRef(options.site, "1"),
        )
        self.url_hash = random_hex(rng, 40)
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
        name = self.rng.choice(FILE_NAMES)
        if self.windows:
            return self.rng.choice(WINDOWS_DIRS).format(user=user) + "\\" + name
        return self.rng.choice(UNIX_DIRS).format(user=user) + "/" + name

    def text(self, lines: tuple[str, ...]) -> str:
        if self.rng.random() < 0.03:
            return self.rng.choice(CONTROL_LINES)
        count = 1 if self.rng.random() < 0.85 else self.rng.randint(2, 3)
        return "\n".join(self.rng.choice(lines) for _ in range(count))

    # --- people -----------------------------------------------------------------------

    def add_customer(self, info: Mapping[str, str] | None, *, primary: bool) -> Actor:
        rng = self.rng
        gs = self.gsnumber()
        if self.jump:
            hostname = rng.choice(SERVERS)
            os_name = rng.choice(SERVER_OS)
            username = rng.choice(("SYSTEM", "root", "Administrator"))
            info = {}
        else:
            full_name, username = rng.choice(CUSTOMER_NAMES)
            os_name = rng.choice(WINDOWS_OS if rng.random() < 0.75 else OTHER_OS)
            hostname = f"{rng.choice(('LAPTOP', 'DESKTOP', 'WS'))}-{random_alnum(rng, 7)}"
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
            public_ip=random_public_ip(rng),
            private_ip=random_private_ip(rng) if rng.random() < 0.9 else None,
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
            "company": rng.choice(COMPANIES) if rng.random() < 0.7 else None,
            "company_code": str(rng.randint(1000, 9999)) if rng.random() < 0.4 else None,
            "issue": rng.choice(ISSUES) if rng.random() < 0.8 else None,
            "details": rng.choice(DETAILS) if rng.random() < 0.6 else None,
        }
        return {k: v for k, v in answers.items() if v is not None}

    def add_rep(self, profile: RepProfile, *, invited: bool = False) -> Actor:
        gs = self.gsnumber()
        rep = Representative(
            gsnumber=gs,
            id=profile.id,
            username=profile.username,
            display_name=profile.name,
            public_display_name=profile.name.split()[0],
            private_display_name=profile.name,
            public_ip=random_public_ip(self.rng) if self.rng.random() < 0.9 else None,
            private_ip=random_private_ip(self.rng) if profile.hostname else None,
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

    def build(self, key: KeySpec, profiles: list[RepProfile]) -> SupportSession:
        s = self.session
        s.external_key = key.external_key
        s.custom_attributes = [
            CustomAttribute(code, custom_display_name(code), value)
            for code, value in key.custom.items()
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

    def jump_start(self, customer: Actor, rep: Actor, profile: RepProfile) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            self.session.jumpoint = NamedRef(*rng.choice(JUMPOINTS))
        if rng.random() < 0.3:
            self.session.jump_group = JumpGroup(profile.name, None, "personal")
        else:
            self.session.jump_group = JumpGroup(*rng.choice(JUMP_GROUPS), "shared")
        if rng.random() < 0.3:
            self.emit(
                EventType.JUMP_ITEM_AUTHORIZATION_REQUEST,
                by=rep,
                data={"message": f"Change {random_ticket_number(rng, 'CHG')} approved"},
            )
            self.tick(120, 10)
            self.emit(EventType.JUMP_ITEM_AUTHORIZATION_REQUEST_UTILIZED, by=rep)
        self.join(rep, by=rep)
        self.take_ownership(rep)
        self.tick(10)
        self.join(customer, by=self.system)
        if rng.random() < 0.4:
            self.credential_injection(rep)

    def body(self, spare: list[RepProfile]) -> None:
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

    def finish(self, key: KeySpec) -> None:
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
        s.file_transfer_count = len(s.events_of(*TRANSFER_TYPES))
        s.file_move_count = len(s.events_of(EventType.FILE_MOVED))
        s.file_delete_count = len(s.events_of(EventType.FILE_DELETED))
        teams = dict.fromkeys(self.rep_teams.values())
        s.teams = [NamedRef(name, team_id) for name, team_id in teams]

    def surveys(self, key: KeySpec) -> None:
        rng = self.rng
        if not self.jump and rng.random() < 0.45:
            answers = [SurveyAnswer("rating", str(rng.randint(1, 5)))]
            if rng.random() < 0.6:
                answers.append(SurveyAnswer("comments", rng.choice(SURVEY_COMMENTS)))
            self.session.customer_surveys.append(ExitSurvey(self.customer.gsnumber, answers))
            self.emit(EventType.CUSTOMER_EXIT_SURVEY, by=self.customer)
        # The rep survey's task_number is how sessions without an external key find their
        # ticket, so it is likelier then.
        if rng.random() < (0.7 if key.external_key is None else 0.4):
            task = key.external_key
            if task is None or not TICKET_NUMBER.fullmatch(task):
                task = random_ticket_number(rng)
            answers = [
                SurveyAnswer("task_number", task),
                SurveyAnswer("resolution", rng.choice(("Resolved", "Escalated", "No answer"))),
            ]
            if rng.random() < 0.3:
                answers.append(SurveyAnswer("comments", rng.choice(NOTE_LINES)))
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
        lines = CUSTOMER_LINES if by.type == "customer" else REP_LINES
        self.emit(EventType.CHAT_MESSAGE, by=by, to=to, body=self.text(lines))

    def note(self) -> None:
        body = "\n".join(self.rng.sample(NOTE_LINES, k=self.rng.randint(1, 2)))
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
        key_path = rng.choice(REGISTRY_KEYS)
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
        exe, window = self.rng.choice(WINDOWS)
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

    def invite(self, profile: RepProfile) -> None:
        self.join(self.add_rep(profile, invited=True), by=self.owner)

    def transfer(self, profile: RepProfile) -> None:
        previous = self.owner
        rep = self.add_rep(profile)
        self.join(rep, by=previous)
        self.take_ownership(rep)
        self.tick(30)
        self.depart(previous)

    def guest(self) -> None:
        self.join(self.add_customer(None, primary=False), by=self.owner)

    def unknown_event(self) -> None:
        event_type, names = self.rng.choice(UNKNOWN_EVENTS)
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
                "ipv4": random_private_ip(self.rng).ip,
                "gateway": "10.0.0.1",
            }
            for name in ("Ethernet0", "Wi-Fi")[: self.rng.randint(1, 2)]
        ]
        return SystemInfoCategory("Network", columns, rows)

    def processes(self, count: int) -> SystemInfoCategory:
        pool = WINDOWS_PROCESSES if self.windows else UNIX_PROCESSES
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
            name, display = self.rng.choice(SERVICES)
            status = self.rng.choice(("Running", "Stopped"))
            rows.append({"name": name, "display_name": display, "status": status})
        return SystemInfoCategory("Services", columns, rows)

    def programs(self, count: int) -> SystemInfoCategory:
        columns = {"name": "Name", "publisher": "Publisher", "version": "Version"}
        rows = [dict(zip(columns, self.rng.choice(PROGRAMS), strict=True)) for _ in range(count)]
        return SystemInfoCategory("Installed Programs", columns, rows)
