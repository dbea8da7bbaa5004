"""Content pools and random helpers the simulated appliance's session generator draws from.

Names, chat lines, file names, processes ... in several scripts, so that generated reports
exercise what real ones carry. Split out of :mod:`.scenarios` so that the generator and the
session builder each stay one job.
"""

from __future__ import annotations

import random
import re

from rsbridge.appliance.report_model import (
    Endpoint,
    EventType,
)

PRESTART_OWNER = "Pre-start Conference"
"""Owner the appliance reports before a representative takes the session."""

# --- content pools ----------------------------------------------------------------

CUSTOMER_NAMES = (
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
REP_NAMES = (
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
TEAMS = (
    ("Service Desk L1", "1"),
    ("Desktop Support L2", "2"),
    ("Network Operations", "3"),
    ("Équipe Paris", "4"),
)
COMPANIES = (
    "Acme Corp",
    "Globex",
    "Initech",
    "Müller & Söhne GmbH",
    "株式会社サンプル",
    "Umbrella",
)
ISSUES = ("Printing", "VPN", "E-mail", "Password reset", "Software installation", "Hardware")
DETAILS = (
    "I need support",
    "Printer on floor 3 shows a paper jam that is not there.",
    "Outlook asks for my password every five minutes.",
    "Le VPN se déconnecte toutes les 10 minutes.",
    "ノートPCが起動しません。",  # noqa: RUF001
    "Need Visio installed for the Q4 project 📊",
)
WINDOWS_OS = (
    "Windows 10 Enterprise (x64) Version 22H2 (Build 19045)",
    "Windows 11 Pro (x64) Version 23H2 (Build 22631)",
)
OTHER_OS = ("macOS 14.6.1 Sonoma", "Ubuntu 22.04.4 LTS")
SERVER_OS = (
    "Windows Server 2022 Standard (x64)",
    "Red Hat Enterprise Linux 9.4 (Plow)",
    "Ubuntu 24.04.1 LTS",
)
SERVERS = ("SRV-DB-01", "SRV-FILE-02", "web-prod-03", "dc01.corp.example.com", "k8s-node-7")
JUMPOINTS = (("JP-Paris-DC1", "3"), ("JP-Frankfurt", "5"), ("JP-Tokyo", "8"))
JUMP_GROUPS = (("Datacenter Servers", "2"), ("Branch Offices", "6"))
PUBLIC_PREFIXES = ("4.231.237", "81.2.69", "89.160.20", "175.16.199", "216.160.83", "2.125.160")

CUSTOMER_LINES = (
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
REP_LINES = (
    "Hello, I'm taking over your request.",
    "Could you accept the screen sharing prompt, please?",
    "I'm going to restart the print spooler.",
    "Bonjour, je regarde ça tout de suite.",
    "少々お待ちください。",
    "Please save your work, I need to reboot.",
    "The update is installed, can you try again?",
    "Is there anything else I can help with? 🙂",
)
CONTROL_LINES = (
    "Terminal output: \x1b[31mFAILED\x1b[0m at step 3",
    "Copied from console:\x07 beep then done",
    "Progress\x1b[2K 100% complete",
)
NOTE_LINES = (
    "Cleared print queue and restarted spooler.",
    "Customer confirmed the issue is resolved.",
    "Escalated to network team: VPN drops on Wi-Fi only.",
    "Mot de passe réinitialisé, MFA réenrôlé.",
    "Driver 5.1.2 installed from vendor site.",
)
SURVEY_COMMENTS = (
    "Great support, thank you!",
    "Très rapide et efficace.",
    "Took a while to get connected.",
    "とても親切でした。",
    "Fixed in 5 minutes 👍",
)
FILE_NAMES = (
    "report.xlsx",
    "résumé.docx",
    "報告書.pdf",
    "install.log",
    "setup.msi",
    "config.yaml",
    "driver-5.1.2.zip",
)
WINDOWS_DIRS = (
    "C:\\Users\\{user}\\Documents",
    "C:\\Users\\{user}\\Desktop",
    "C:\\Windows\\Temp",
    "D:\\Shared\\Finance\\2024",
)
UNIX_DIRS = ("/home/{user}", "/home/{user}/Téléchargements", "/var/log", "/srv/share", "/opt/app")
WINDOWS_PROCESSES = (
    ("explorer.exe", "C:\\Windows\\explorer.exe"),
    ("svchost.exe", "C:\\Windows\\System32\\svchost.exe"),
    ("chrome.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"),
    ("OUTLOOK.EXE", "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"),
    ("Teams.exe", "C:\\Users\\Public\\AppData\\Local\\Microsoft\\Teams\\Teams.exe"),
    ("bomgar-scc.exe", "C:\\ProgramData\\bomgar-scc-0x5f1e2c\\bomgar-scc.exe"),
)
UNIX_PROCESSES = (
    ("systemd", "/usr/lib/systemd/systemd"),
    ("sshd", "/usr/sbin/sshd"),
    ("nginx", "/usr/sbin/nginx"),
    ("python3", "/usr/bin/python3"),
    ("postgres", "/usr/lib/postgresql/16/bin/postgres"),
)
SERVICES = (
    ("Spooler", "Print Spooler"),
    ("wuauserv", "Windows Update"),
    ("Dnscache", "DNS Client"),
    ("W32Time", "Windows Time"),
    ("WinDefend", "Microsoft Defender Antivirus Service"),
)
PROGRAMS = (
    ("Microsoft 365 Apps for enterprise", "Microsoft Corporation", "16.0.17928.20156"),
    ("Google Chrome", "Google LLC", "131.0.6778.86"),
    ("7-Zip 24.08 (x64)", "Igor Pavlov", "24.08"),
    ("Adobe Acrobat Reader", "Adobe Inc.", "24.004.20220"),
    ("GlobalProtect", "Palo Alto Networks", "6.2.4"),
)
REGISTRY_KEYS = (
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate",
    "HKEY_CURRENT_USER\\Software\\Microsoft\\Office\\16.0\\Outlook\\AutoDiscover",
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Spooler",
)
WINDOWS = (
    ("WINWORD.EXE", "Report Q4.docx - Word"),
    ("chrome.exe", "Intranet – Accueil - Google Chrome"),  # noqa: RUF001
    ("mmc.exe", "Device Manager"),
)
# Event types seen in PRA data but not among the 53 Remote Support ones.
UNKNOWN_EVENTS = (
    ("Session Mouse Left Clicked", ("x", "y")),
    ("Special Action Executed", ("action",)),
    ("Session Window Closed", ("windowName",)),
)
CUSTOM_DISPLAY_NAMES = {
    "snow_task_id": "ServiceNow Task ID",
    "snow_cmdb_ci_id": "ServiceNow CI ID",
    "snow_call_id": "ServiceNow Call ID",
    "snow_interaction_id": "ServiceNow Interaction ID",
    "ticket_id": "Ticket",
    "sf_case_id": "Salesforce Case ID",
}
TICKET_NUMBER = re.compile(r"[A-Z]{3,5}\d{7}")
TRANSFER_TYPES = frozenset({EventType.FILE_UPLOAD, EventType.FILE_DOWNLOAD})


def random_hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def random_alnum(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(length))


def random_public_ip(rng: random.Random) -> Endpoint:
    port = rng.randint(1025, 65535)
    if rng.random() < 0.15:
        return Endpoint("2a01:e34:" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(6)), port)
    return Endpoint(f"{rng.choice(PUBLIC_PREFIXES)}.{rng.randint(1, 254)}", port)


def random_private_ip(rng: random.Random) -> Endpoint:
    if rng.random() < 0.5:
        return Endpoint(f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}")
    return Endpoint(f"192.168.{rng.randint(0, 15)}.{rng.randint(2, 254)}")


def random_ticket_number(rng: random.Random, prefix: str = "INC") -> str:
    return f"{prefix}{rng.randint(10001, 99999):07d}"


def custom_display_name(code_name: str) -> str:
    return CUSTOM_DISPLAY_NAMES.get(code_name) or code_name.replace("_", " ").title()
