"""A class roster (CSV, one row per student) checked and turned into an Ansible inventory.

Every row is checked before anything is written; each problem names its row and the fix.
Each machine gets its own pod network carved from one range, and each machine a lab 08
partner: the student's other machine, or else another one-machine student's.
"""

from __future__ import annotations

import csv
import ipaddress
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hardway.classroom.model import Unsafe, check_class_name, dump_yaml, unsafe
from hardway.mirror import artifacts
from hardway.mirror.store import Mirror
from hardway.provision import mirror_vars
from hardway.settings import Settings, UsageError, lab_ranges, range_problem

COLUMNS = ("student", "machine1", "machine2", "user", "port", "key")
# A roster is a line per student: anything larger is the wrong file.
MAX_ROSTER = 2**20
MAX_FIELD = 4096
REQUIRED = ("student", "machine1")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*"
                       r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
# A login name as useradd accepts it by default (and at most 32 characters): nothing ssh
# could read as an option, nothing a shell or a template would act on.
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Ansible would template a value holding {{, {% or {#, and ssh's IdentityFile="..." cannot
# hold a double quote; a key path never needs them.
_KEY_REJECTS = ("{{", "{%", "{#", '"')


@dataclass
class RosterMachine:
    """A machine as the roster gives it: how to reach it, for `class init` to write."""

    name: str
    student: str
    address: str
    user: str
    port: int
    key: str
    row: int
    pod_cidr: str = ""
    peers: list[str] = field(default_factory=list)


@dataclass
class Student:
    name: str
    machines: list[RosterMachine]


class RosterError(UsageError):
    """Every problem found in a roster, one per line."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s), nothing was written:\n  " +
                         "\n  ".join(problems))


def _address_problem(value: str) -> str:
    # No IPv6 scope (fe80::1%eth0): Python takes any text after the %, and the address goes
    # into commands on the nodes (lab 08's routes).
    if "%" in value:
        return f"{value!r} has a scope (%...), which hardway does not take"
    try:
        ipaddress.ip_address(value)
        return ""
    except ValueError:
        pass
    if _HOSTNAME.match(value) and not value.replace(".", "").isdigit():
        return ""
    return f"{value!r} is neither an IP address nor a host name"


def text(path: Path) -> str:
    """A roster file's text: UTF-8 (with or without the BOM spreadsheets write), small."""
    if not path.is_file():
        raise UsageError(f"no roster at {path}: write a CSV with the header "
                         f"{','.join(COLUMNS)} (docs/classroom.md)")
    try:
        data = path.read_bytes()[:MAX_ROSTER + 1]
    except OSError as exc:
        raise UsageError(f"cannot read the roster {path}: {exc.strerror}") from None
    if len(data) > MAX_ROSTER:
        raise UsageError(f"{path} is larger than {MAX_ROSTER // 2**20} MiB: a roster is one short "
                         "line per student; is it the right file?")
    if b"\0" in data:
        raise UsageError(f"{path} holds NUL bytes, so it is binary or UTF-16: save the roster "
                         "as CSV UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                         f"{exc.start}): save the roster as CSV UTF-8") from None


def _fields(line: str) -> list[str] | None:
    """The fields of a line, or None for a field over the csv module's limit (128 KiB)."""
    try:
        return next(csv.reader([line]))
    except csv.Error:
        return None


def read(path: Path) -> list[Student]:
    """The students of a roster file, or a RosterError listing every bad row."""
    # Rows are numbered as the file's lines, so "row 6" is line 6 in the instructor's editor.
    rows = [(number, _fields(line)) for number, line in enumerate(text(path).splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise UsageError(f"{path} is empty: add the header {','.join(COLUMNS)} and one row "
                         "per student")
    header_row, header_fields = rows[0]
    header = [h.strip().lower() for h in header_fields or []]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        raise RosterError(str(path), [
            f"row {header_row} (header): {'unknown column(s) ' + ', '.join(unknown) if unknown else ''}"
            f"{'; ' if unknown and missing else ''}"
            f"{'missing column(s) ' + ', '.join(missing) if missing else ''}: "
            f"the header is {','.join(COLUMNS)} (machine2, user, port and key may be left out)"])
    problems: list[str] = []
    students: list[Student] = []
    seen_students: dict[str, int] = {}
    seen_machines: dict[tuple[str, int], int] = {}
    for number, raw in rows[1:]:
        if raw is None or any(len(value) > MAX_FIELD for value in raw):
            problems.append(f"row {number}: a field is longer than {MAX_FIELD} characters: "
                            "check the row")
            continue
        if len(raw) > len(header):
            problems.append(f"row {number}: {len(raw)} fields for {len(header)} columns: "
                            "remove the extra commas")
            continue
        row = {h: (raw[i].strip() if i < len(raw) else "") for i, h in enumerate(header)}
        control = [h for h, value in row.items() if any(ord(c) < 32 or c == "\x7f" for c in value)]
        if control:
            problems.append(f"row {number}: a control character in {', '.join(control)}: "
                            "retype the field as plain text")
            continue
        name = row["student"].lower()
        if not name:
            problems.append(f"row {number}: no student name: fill the student column")
            continue
        if not _NAME.match(name):
            problems.append(f"row {number}: student {row['student']!r} cannot name a machine: "
                            "use letters, digits and dashes (e.g. ada-lovelace)")
            continue
        if name in seen_students:
            problems.append(f"row {number}: student {name} is already on row "
                            f"{seen_students[name]}: give each student one row")
            continue
        seen_students[name] = number
        port_text = row.get("port") or "22"
        if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
            problems.append(f"row {number}: port {port_text!r} is not a port: use 1-65535 "
                            "or leave it empty for 22")
            continue
        user = row.get("user") or "root"
        if not _USER.match(user):
            problems.append(f"row {number}: user {user!r} is not a login name: use lower-case "
                            "letters, digits, _ and - (not first), up to 32, or leave it empty "
                            "for root")
            continue
        key = row.get("key", "")
        if any(mark in key for mark in _KEY_REJECTS):
            problems.append(f"row {number}: key path {key!r} holds {{{{, {{%, {{# or a double "
                            "quote: rename the key file")
            continue
        # A relative key path is relative to the roster, wherever hardway runs from.
        key_path = (path.parent / Path(key).expanduser()).resolve() if key else None
        if key_path and not key_path.is_file():
            problems.append(f"row {number}: key file {key_path} does not exist: give the path "
                            "of the SSH private key on this machine (absolute, or relative to "
                            "the roster), or leave it empty")
            continue
        addresses = [a for a in (row["machine1"], row.get("machine2", "")) if a]
        if not row["machine1"]:
            problems.append(f"row {number}: student {name} has no machine1: put the address "
                            "of the student's (first) machine there")
            continue
        machines = []
        for index, address in enumerate(addresses, start=1):
            problem = _address_problem(address)
            if problem:
                problems.append(f"row {number}: machine{index} {problem}: give the address "
                                "Ansible reaches the machine at")
                continue
            where = (address.lower(), int(port_text))
            if where in seen_machines:
                problems.append(f"row {number}: machine {address} (port {port_text}) is already "
                                f"on row {seen_machines[where]}: every student needs their "
                                "own machine")
                continue
            seen_machines[where] = number
            machines.append(RosterMachine(name=f"{name}-{index}", student=name, address=address,
                                    user=user, port=int(port_text),
                                    key=str(key_path or ""), row=number))
        students.append(Student(name=name, machines=machines))
    if not students and not problems:
        problems.append("no students: add one row per student below the header")
    if problems:
        raise RosterError(str(path), problems)
    return students


def parse_range(pod_range: str, prefix: int) -> ipaddress.IPv4Network:
    """The range every machine's pod network is carved from."""
    try:
        network = ipaddress.IPv4Network(pod_range, strict=True)
    except ValueError as exc:
        raise UsageError(f"--pod-range {pod_range!r} is not an IPv4 network ({exc}): "
                         "use one such as 10.200.0.0/16") from None
    problem = range_problem(network, lab_ranges())
    if problem:
        raise UsageError(f"--pod-range {problem}: use a private range such as 10.200.0.0/16")
    if not 16 <= prefix <= 28 or prefix < network.prefixlen:
        raise UsageError(f"--pod-prefix /{prefix} does not fit in {network}: use a prefix "
                         f"from /{max(16, network.prefixlen)} to /28, e.g. /24")
    return network


def assign(students: list[Student], network: ipaddress.IPv4Network, prefix: int,
           source: str) -> list[str]:
    """Give every machine a pod network and its lab 08 partners; returns warnings.
    Fails, naming the first row that does not fit, when the range is too small."""
    subnets = network.subnets(new_prefix=prefix)
    capacity = 2 ** (prefix - network.prefixlen)
    machines = [m for s in students for m in s.machines]
    for machine in machines:
        subnet = next(subnets, None)
        if subnet is None:
            raise RosterError(source, [
                f"row {machine.row}: no pod network left for {machine.name}: {network} holds "
                f"{capacity} /{prefix} networks and the class needs {len(machines)}; use a "
                f"larger --pod-range or a longer --pod-prefix"])
        machine.pod_cidr = str(subnet)
    # A machine must not sit in a network its own routes send elsewhere.
    taken = {f"the pod range {network}": network, **lab_ranges()}
    inside = [f"row {m.row}: machine {m.address} lies in {what}: choose a --pod-range "
              "clear of the machines, or give the machine another address" for m in machines
              for what, other in taken.items() if (ip := _ip(m.address)) and ip in other]
    if inside:
        raise RosterError(source, inside)
    warnings = []
    alone = []
    for student in students:
        if len(student.machines) == 2:
            one, two = student.machines
            one.peers, two.peers = [two.name], [one.name]
        else:
            alone.append(student.machines[0])
    for one, two in zip(alone[::2], alone[1::2], strict=False):
        one.peers, two.peers = [two.name], [one.name]
    if len(alone) % 2:
        last = alone[-1]
        warnings.append(f"row {last.row}: {last.student} has one machine and no partner for "
                        "lab 08 (two nodes): add a machine2, or another one-machine student")
    return warnings


def _ip(address: str) -> ipaddress.IPv4Address | None:
    try:
        found = ipaddress.ip_address(address)
    except ValueError:
        return None
    return found if isinstance(found, ipaddress.IPv4Address) else None


def inventory(students: list[Student], name: str, folder: Path,
              extra_vars: dict, control_plane: bool = False) -> tuple[dict, dict]:
    """hosts.yml (lab_nodes with every machine, one group per student, and with a control
    plane each student's first machine in control_plane) and group_vars/all.yml (what the
    whole class shares)."""
    hosts = {}
    for machine in (m for s in students for m in s.machines):
        entry: dict[str, object] = {"ansible_host": machine.address, "lab_student": machine.student,
                 "lab_pod_cidr": machine.pod_cidr, "lab_peers": machine.peers}
        if machine.user != "root":
            entry["ansible_user"] = machine.user
        if machine.port != 22:
            entry["ansible_port"] = machine.port
        if machine.key:
            entry["ansible_ssh_private_key_file"] = machine.key
        # Nothing from a roster is ever templated by Ansible, whatever got past read().
        hosts[machine.name] = unsafe(entry)
    known_hosts = folder.absolute() / "known_hosts"
    if any(c == '"' or ord(c) < 32 for c in str(known_hosts)):
        raise UsageError(f"the class folder {folder} has a double quote or a control character "
                         "in its path, which ssh cannot take: set HARDWAY_CLASSES to a plain path")
    known = shlex.quote(f'UserKnownHostsFile="{known_hosts}"')
    groups = {f"student_{s.name.replace('-', '_')}": {"hosts": {m.name: None for m in s.machines}}
              for s in students}
    if control_plane:
        # One control plane per student, on their first machine (docs/provisioning.md).
        groups["control_plane"] = {"hosts": {s.machines[0].name: None for s in students}}
    class_vars = {
        "lab_class": name,
        "ansible_user": "root",
        # Trust each machine's host key on first contact, and keep the keys with the class
        # rather than in the instructor's own known_hosts.
        # Ansible splits these as a shell would, then ssh reads the value: the path is
        # quoted for both, so a class folder may have spaces in it.
        "ansible_ssh_common_args": Unsafe(
            f"-o StrictHostKeyChecking=accept-new -o {known} "
            "-o ServerAliveInterval=5 -o ServerAliveCountMax=3"),
        # The same for Mitogen, which puts its own keep-alives ahead of the options above
        # (and `StrictHostKeyChecking yes`: `class up` learns new keys first).
        "mitogen_ssh_keepalive_interval": 5,
        "mitogen_ssh_keepalive_count": 3,
        # As plain ssh: no compression. The pushed binaries (~200 MB a machine) cost the
        # instructor's machine 18 CPU-s a machine compressed, 8 not (docs/classroom.md).
        "mitogen_ssh_compression": False,
        # Fetch each artifact once, on this machine, and push it to every student machine.
        "download_push": True,
        **extra_vars,
    }
    return {"all": {"children": {"lab_nodes": {"hosts": hosts}, **groups}}}, class_vars


def write(folder: Path, hosts: dict, class_vars: dict, roster_text: str, force: bool) -> Path:
    """Write the class folder in one step: all of it, or (on any error) none of it."""
    if folder.exists() and not force:
        raise UsageError(f"{folder} already exists: choose another --name, or pass --force "
                         "to replace it (its known_hosts and its control planes' CAs are kept)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        header = ("# Written by `hardway class init` from roster.csv (kept beside it).\n"
                  "# Re-run `hardway class init --force` after editing the roster.\n")
        (staging / "hosts.yml").write_text(header + dump_yaml(hosts))
        (staging / "group_vars").mkdir()
        (staging / "group_vars/all.yml").write_text(
            header + "# Every other knob, with its default: "
            "inventories/classroom/group_vars/lab_nodes.yml\n" +
            dump_yaml(class_vars))
        (staging / "roster.csv").write_text(roster_text)
        # What the class made and the roster does not say goes on: the machines' host keys,
        # and the control planes' CAs and certificates (students' kubeconfigs name them).
        if (folder / "known_hosts").exists():
            shutil.copy2(folder / "known_hosts", staging / "known_hosts")
        # Only for machines that still run one: a student removed from the roster takes
        # their CA along, so a newcomer given the same machine name never gets it.
        planes = hosts["all"]["children"].get("control_plane", {}).get("hosts", {})
        for machine in planes:
            if (folder / "pki" / machine).is_dir():
                shutil.copytree(folder / "pki" / machine, staging / "pki" / machine, symlinks=True)
        if folder.exists():
            old = folder.with_name(f".{folder.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
            staging.rename(folder)
            shutil.rmtree(old)
        else:
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / "hosts.yml"


# Where a class's checksums come from, and how each is given the control plane's.
CHECKSUM_FIXES = {
    "official": ("the pinned official checksums", "pin them on a connected machine (`hardway "
                 "versions add COMPONENT VERSION`), or serve a mirror built with "
                 "HARDWAY_CONTROL_PLANE=1 and pass --mirror"),
    "mirror": ("this machine's mirror", "build them into it (HARDWAY_CONTROL_PLANE=1 hardway "
               "mirror build) and run class init again"),
    "vars": ("--vars's download_checksums", "add them to download_checksums in the --vars file"),
}


def check_control_plane(extra: dict, source: str) -> None:
    """Each control-plane component at the version the class will use has a checksum to
    verify it against, in the checksums the class's roles will be given (source: a key of
    CHECKSUM_FIXES)."""
    checksums = extra["download_checksums"] if source != "official" else artifacts.upstream_checksums()
    arch = artifacts.host_arch()
    pinned = artifacts.pinned_versions()
    missing = []
    for component in artifacts.CONTROL_PLANE_COMPONENTS:
        version = str(extra.get(artifacts.VERSION_SOURCES[component][1], pinned[component]))
        found = checksums.get(component) if isinstance(checksums, dict) else None
        if not (isinstance(found, dict) and version in (found.get(arch) or {})):
            missing.append(f"{component} {version!r}")
    if missing:
        where, fix = CHECKSUM_FIXES[source]
        raise UsageError(f"--control-plane: {where} hold(s) no {arch} checksum for "
                         f"{', '.join(missing)}: {fix}")


def init(settings: Settings, roster: Path, name: str, pod_range: str, prefix: int,
         mirror_url: str | None, vars_file: Path | None, force: bool,
         control_plane: bool = False) -> tuple[Path, list[str]]:
    """Check everything, then write inventories/NAME/; returns hosts.yml and warnings."""
    check_class_name(name)
    network = parse_range(pod_range, prefix)
    extra: dict = {}
    source = "official"  # of the checksums: the last of these to give download_checksums
    if mirror_url:
        if not mirror_url.startswith(("http://", "https://")):
            raise UsageError(f"--mirror {mirror_url!r} is not a URL: give the address the "
                             "mirror is served at, e.g. http://192.0.2.1:8077")
        store = Mirror(settings.mirror)
        if not (store.root / "index.yml").exists():
            raise UsageError(f"--mirror needs this machine's mirror for its checksums, and "
                             f"{store.root} holds none: run `hardway mirror build` first")
        extra.update(mirror_vars(store, mirror_url))
        source = "mirror"
    if vars_file:
        try:
            more = yaml.safe_load(vars_file.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UsageError(f"--vars {vars_file}: cannot read it as YAML "
                             f"({' '.join(str(exc).split())})") from None
        if not isinstance(more, dict):
            raise UsageError(f"--vars {vars_file} must hold a mapping of variable: value")
        extra.update(more)
        if "download_checksums" in more:
            source = "vars"
    if control_plane:
        check_control_plane(extra, source)
    students = read(roster)
    warnings = assign(students, network, prefix, str(roster))
    folder = settings.classes / name
    hosts, class_vars = inventory(students, name, folder, extra, control_plane)
    new_class = not folder.exists()
    written = write(folder, hosts, class_vars, text(roster), force)
    if new_class:
        # A new class starts with no progress, even if an old one had the same name.
        shutil.rmtree(settings.state / "classes" / name, ignore_errors=True)
    return written, warnings
