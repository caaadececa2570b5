"""The labs under labs/: list them, run their Ansible steps, and run their checks.

A lab is a folder `labs/<id>-slug/` (labs/README.md lists its files); its id is a part's
prefix and a number (labs/parts.yml). Nothing here knows any lab or part by name.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from hardway import playbook
from hardway.children import ansible_env, run, run_json, tool
from hardway.files import atomic_write
from hardway.settings import REPO, HardwayError, UsageError

LABS = REPO / "labs"
PARTS = LABS / "parts.yml"
# A lab folder's name: its id (a part's prefix, then a number), a dash, a slug.
_FOLDER = re.compile(r"^(?P<prefix>[a-z]*)(?P<number>[0-9]+)-[a-z0-9-]+$")
# What a check says when it saw something on its way (a pod being created, a container
# between restarts): the student should look again soon, not fix anything.
STARTING = "still starting: "
_LAB_KEYS = {"id": str, "title": str, "goal": str, "hint": str}
# playbooks/lab.yml's progress_stage: a lab step is one stage.
STEP_STAGE = "lab"
Show = Callable[[playbook.Progress], None]


def quiet(progress: playbook.Progress) -> None:
    """Show nothing while a lab step runs."""


@dataclass(frozen=True)
class Part:
    """A part of the course: its labs begin from the provisioned node, not from another
    part's end."""
    name: str
    prefix: str
    title: str


def parts() -> list[Part]:
    """The parts in the order they are taught (labs/parts.yml)."""
    try:
        data = yaml.safe_load(PARTS.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise HardwayError(f"{PARTS} cannot be read as YAML ({type(exc).__name__}): fix the file") \
            from None
    keys = ("name", "prefix", "title")
    if not isinstance(data, list) or not all(
            isinstance(p, dict) and all(isinstance(p.get(k), str) for k in keys) for p in data):
        raise HardwayError(f"{PARTS} must be a list of parts, each with {', '.join(keys)} (strings)")
    found = [Part(name=p["name"], prefix=p["prefix"], title=p["title"].strip()) for p in data]
    for key in ("name", "prefix"):
        values = [getattr(p, key) for p in found]
        if len(set(values)) != len(values):
            raise HardwayError(f"{PARTS}: two parts have the same {key}")
    return found


@dataclass(frozen=True)
class Lab:
    id: str
    folder: str
    title: str
    goal: str
    hint: str
    # How many nodes the lab needs at least (a node and its partners).
    nodes: int = 1
    # The part it belongs to (labs/parts.yml) and its place in that part.
    part: str = ""
    number: int = 0

    @property
    def path(self) -> Path:
        return LABS / self.folder


def load(meta: Path, known: list[Part] | None = None) -> Lab:
    """One lab from its lab.yml; a malformed file is named in a one-line error."""
    match = _FOLDER.match(meta.parent.name)
    if not match:
        raise HardwayError(f"{meta.parent}: a lab folder is named <id>-<slug>, its id a part's "
                           "prefix and a number (labs/parts.yml), e.g. n1-runc or 01-host-network")
    folder_id = meta.parent.name.split("-", 1)[0]
    part = next((p for p in (known if known is not None else parts())
                 if p.prefix == match["prefix"]), None)
    if part is None:
        raise HardwayError(f"{meta.parent}: no part in {PARTS} has the prefix {match['prefix']!r}")
    try:
        data = yaml.safe_load(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise HardwayError(f"{meta} cannot be read as YAML ({type(exc).__name__}): fix the file") \
            from None
    if not isinstance(data, dict):
        raise HardwayError(f"{meta} must be a mapping with {', '.join(_LAB_KEYS)}")
    missing = [key for key, kind in _LAB_KEYS.items()
               if not isinstance(data.get(key), kind) or not str(data[key]).strip()]
    if missing:
        raise HardwayError(f"{meta} lacks {', '.join(missing)} (each a non-empty string)")
    if data["id"] != folder_id:
        raise HardwayError(f"{meta} has id {data['id']!r}; its folder says {folder_id!r}")
    nodes = data.get("nodes", 1)
    if not isinstance(nodes, int) or nodes < 1:
        raise HardwayError(f"{meta}: nodes must be a whole number of at least 1")
    return Lab(id=data["id"], folder=meta.parent.name, title=data["title"].strip(),
               goal=data["goal"].strip(), hint=" ".join(data["hint"].split()), nodes=nodes,
               part=part.name, number=int(match["number"]))


def all_labs() -> list[Lab]:
    """Every lab in course order: part by part, then by number."""
    known = parts()
    order = {part.name: index for index, part in enumerate(known)}
    found = [load(meta, known) for meta in LABS.glob("*/lab.yml")]
    return sorted(found, key=lambda lab: (order[lab.part], lab.number))


def by_part(labs: list[Lab]) -> list[tuple[Part, list[Lab]]]:
    """The parts, each with its labs (in the order given); parts with none are left out."""
    grouped = [(part, [lab for lab in labs if lab.part == part.name]) for part in parts()]
    return [(part, members) for part, members in grouped if members]


def find(lab_id: str) -> Lab:
    labs = all_labs()
    wanted = lab_id.zfill(2) if lab_id.isdigit() else lab_id.lower()
    for lab in labs:
        if wanted in (lab.id, lab.folder):
            return lab
    raise UsageError(f"no lab {lab_id!r}: choose one of {', '.join(lab.id for lab in labs)} "
                     "(`hardway lab list`)")


def run_steps(inventory: Path, solve: list[Lab], stage: Lab | None, limit: str | None = None,
              shortcut: Lab | None = None, show: Show = quiet,
              tell: Callable[[str], None] = print) -> None:
    """Run playbooks/lab.yml on the nodes. Ansible's output goes to a log file; what the
    step tells the student (its debug tasks' messages: files moved aside, a lab skipped) goes
    to tell, even when the step then fails; a node that failed or could not be reached is
    one line naming the node, the task and its message, and the log."""
    # Ansible gets the nodes by name: the step runs where the check looks, whatever the limit.
    names = [target.name for target in targets(inventory, limit)]
    extra = {"lab_run": str(time.time_ns()), "lab_shortcut_id": shortcut.id if shortcut else "",
             "lab_solve": [lab.folder for lab in solve],
             "lab_folders": [lab.folder for lab in all_labs()],
             "lab_stage": stage.id if stage else "", "lab_dir": stage.folder if stage else ""}
    command = [tool("ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks/lab.yml"),
               "-e", json.dumps(extra), "--limit", ",".join(names)]
    progress, output = playbook.run(command, hosts=names, stages=(STEP_STAGE,),
                                    state=_cache_dir() / "lab-steps", kind="lab",
                                    what="the lab step", show=show, log=lambda line: None)
    for _, note in progress.notes:
        tell(note)
    # Our own failure messages say what to do, and may be long: the callback keeps 600
    # characters of them.
    failed = playbook.first_failure(progress, limit=600)
    if failed:
        raise HardwayError(f"the lab step: {failed.rstrip('.')}. Ansible's output is in {output}")


def start(lab: Lab, inventory: Path, limit: str | None = None, show: Show = quiet,
          tell: Callable[[str], None] = print) -> None:
    """Reset, apply the solutions of the earlier labs of its part, set the stage for this one."""
    earlier = [other for other in all_labs() if other.part == lab.part and other.number < lab.number]
    run_steps(inventory, solve=earlier, stage=lab, limit=limit, show=show, tell=tell)


def solve(lab: Lab, inventory: Path, limit: str | None = None, show: Show = quiet,
          tell: Callable[[str], None] = print) -> None:
    """Reach this lab's end state: on a node where the lab was started, its own solution;
    anywhere else, reset and every solution of its part up to it."""
    upto = [other for other in all_labs() if other.part == lab.part and other.number <= lab.number]
    run_steps(inventory, solve=upto, stage=None, limit=limit, shortcut=lab, show=show, tell=tell)


def reset(inventory: Path, limit: str | None = None, show: Show = quiet,
          tell: Callable[[str], None] = print) -> None:
    run_steps(inventory, solve=[], stage=None, limit=limit, show=show, tell=tell)


# --- checks ----------------------------------------------------------------------------


@dataclass
class NodeResult:
    node: str
    passed: bool
    reason: str = ""
    hint: str = ""
    # The check saw something on its way, not something wrong: look again in a few seconds.
    starting: bool = False
    checks: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Target:
    """A node as a check reaches it: its inventory name, how to log in, its variables."""
    name: str
    address: str
    user: str
    port: int
    key: str
    ssh_options: tuple[tuple[str, str], ...]
    variables: dict = field(hash=False, compare=False)


def lab_variables() -> dict:
    """Every lab's own settings (labs/<lab>/vars.yml), as the lab playbook loads them."""
    merged: dict = {}
    for path in (lab.path / "vars.yml" for lab in all_labs()):
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise HardwayError(f"{path} cannot be read as YAML ({type(exc).__name__}): fix the file") \
                from None
        if not isinstance(data, dict):
            raise HardwayError(f"{path} must be a mapping of variable names to values")
        merged.update(data)
    return merged


def _inventory_key(inventory: Path) -> str:
    """Changes whenever a file Ansible reads for this inventory changes."""
    digest = hashlib.sha256(str(inventory.resolve()).encode())
    for path in sorted(p for p in inventory.parent.rglob("*") if p.is_file()):
        digest.update(f"{path}\0{path.stat().st_mtime_ns}\0{path.stat().st_size}\0".encode())
    return digest.hexdigest()[:16]


def _cache_dir() -> Path:
    folder = Path.home() / ".cache" / "hardway"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def inventory_data(inventory: Path) -> dict:
    """`ansible-inventory --list` of an inventory, cached until one of its files changes:
    a check should not pay Ansible's start-up to learn the same addresses again."""
    cached = _cache_dir() / f"inventory-{_inventory_key(inventory)}.json"
    with suppress(OSError, ValueError):  # absent or damaged: ask Ansible again
        return json.loads(cached.read_text(), object_hook=_plain)
    data = run_json([tool("ansible-inventory"), "-i", str(inventory), "--list"],
                    what=f"reading the inventory {inventory}", cwd=REPO, env=ansible_env(),
                    fix="fix the file ansible-inventory names")
    for old in cached.parent.glob("inventory-*.json"):
        old.unlink(missing_ok=True)
    text = json.dumps(data)
    atomic_write(cached, text.encode())  # checks in parallel threads may write it at once
    return json.loads(text, object_hook=_plain)


def _plain(value: dict):
    """ansible-inventory writes a !unsafe string as {"__ansible_unsafe": text}: the text."""
    return value["__ansible_unsafe"] if value.keys() == {"__ansible_unsafe"} else value


def _members(data: dict, group: str) -> list[str]:
    entry = data.get(group, {})
    names = list(entry.get("hosts", []))
    for child in entry.get("children", []):
        names += _members(data, child)
    return sorted(set(names))


def _ssh_options(common_args: str) -> tuple[tuple[str, str], ...]:
    """`-o Key=Value` pairs from ansible_ssh_common_args, the only form our inventories use."""
    words = shlex.split(common_args)  # as Ansible splits them
    options = []
    for flag, value in zip(words[::2], words[1::2], strict=False):
        key, _, setting = value.partition("=")
        if flag != "-o" or not setting:
            raise HardwayError(f"ansible_ssh_common_args {common_args!r}: only `-o Key=Value` "
                               "options are understood by lab checks")
        # ssh takes a value in double quotes (a path with spaces); ssh_config quotes it again.
        options.append((key, setting.removeprefix('"').removesuffix('"')))
    return tuple(options)


def targets(inventory: Path, limit: str | None = None) -> list[Target]:
    """The lab nodes of an inventory, or those a limit names (comma-separated names,
    groups or shell patterns, as Ansible's --limit takes them)."""
    data = inventory_data(inventory)
    nodes = _members(data, "lab_nodes")
    if not nodes:
        raise HardwayError(f"{inventory} has no hosts in group lab_nodes")
    chosen = nodes
    if limit:
        chosen = []
        for pattern in filter(None, (p.strip() for p in limit.split(","))):
            found = _members(data, pattern) or fnmatch.filter(nodes, pattern)
            if not found:
                raise UsageError(f"--limit {pattern!r} matches no lab node in {inventory} "
                                 f"(nodes: {', '.join(nodes)})")
            chosen += [n for n in found if n in nodes and n not in chosen]
    hostvars = data.get("_meta", {}).get("hostvars", {})
    own = lab_variables()
    result = []
    for name in sorted(chosen):
        # As in the lab playbook (include_vars), a lab's own settings win over the inventory's.
        variables = dict(hostvars.get(name, {}), **own, inventory_hostname=name,
                         groups={"lab_nodes": nodes})
        result.append(Target(
            name=name, address=str(variables.get("ansible_host", name)),
            user=str(variables.get("ansible_user", "root")),
            port=int(variables.get("ansible_port", 22)),
            key=str(variables.get("ansible_ssh_private_key_file", "")),
            ssh_options=_ssh_options(str(variables.get("ansible_ssh_common_args", ""))),
            variables=variables))
    return result


def ssh_config(nodes: list[Target]) -> str:
    """One Host block per node, sharing one connection per node across a check's commands
    (and across checks for a minute)."""
    control = _cache_dir() / "cp"
    control.mkdir(exist_ok=True, mode=0o700)
    blocks = []
    for node in nodes:
        settings = [("HostName", node.address), ("User", node.user), ("Port", str(node.port)),
                    ("BatchMode", "yes"), ("ConnectTimeout", "5"), ("ServerAliveInterval", "5"),
                    ("ControlMaster", "auto"), ("ControlPath", f"{control}/%C"),
                    ("ControlPersist", "60s"), *node.ssh_options]
        if node.key:
            settings.append(("IdentityFile", node.key))
        for key, value in settings:
            if any(ch in f"{key}{value}" for ch in "\n\r\"") or not value.strip():
                raise HardwayError(f"{node.name}: the inventory value {value!r} for {key} cannot "
                                   "be used in an ssh configuration")
        blocks.append(f"Host {node.name}\n" + "".join(f'  {k} "{v}"\n' for k, v in settings))
    return "".join(blocks)


_ID = re.compile(r"^(?P<test>[^\[]+)\[(?:ssh://)?(?P<node>[^\]?]+)")


def _reason(failure: ET.Element) -> str:
    """The assertion's own message, without pytest's introspection."""
    text = failure.get("message") or failure.text or "failed"
    first = text.strip().splitlines()[0] if text.strip() else "failed"
    return first.removeprefix("AssertionError: ").strip()


def _check_once(lab: Lab, nodes: list[Target], all_nodes: list[Target]) -> list[NodeResult]:
    with tempfile.TemporaryDirectory(prefix="hardway-check-") as tmp:
        config, variables, report = Path(tmp) / "ssh_config", Path(tmp) / "vars.json", \
            Path(tmp) / "report.xml"
        config.write_text(ssh_config(all_nodes))
        variables.write_text(json.dumps({n.name: n.variables for n in all_nodes}))
        # Each spec is complete on its own: pytest-testinfra splits --hosts on commas.
        hosts = ",".join(f"ssh://{n.name}?ssh_config={config}&timeout=5"
                         + ("&sudo=true" if n.user != "root" else "") for n in nodes)
        command = [tool("pytest"), str(lab.path / "check.py"), f"--hosts={hosts}",
                   "-p", "no:cacheprovider", "-q", "--tb=line", f"--junitxml={report}",
                   "-o", "junit_family=xunit2", f"--rootdir={LABS}"]
        env = dict(ansible_env(), HARDWAY_CHECK_VARS=str(variables), HARDWAY_CHECK_SSH=str(config),
                   PYTHONDONTWRITEBYTECODE="1")
        result = run(command, what=f"the check for lab {lab.id}", check=False, cwd=LABS, env=env)
        if not report.exists():
            raise HardwayError(f"the check for lab {lab.id} could not run: "
                               f"{(result.stdout + result.stderr).strip()[-600:]}")
        results = parse_results(lab, ET.parse(report).getroot())
    missing = [n.name for n in nodes if n.name not in results]
    if missing:
        raise HardwayError(f"the check for lab {lab.id} gave no result for {', '.join(missing)}: "
                           f"{(result.stdout + result.stderr).strip()[-600:]}")
    return [results[n.name] for n in nodes]


def parse_results(lab: Lab, report: ET.Element) -> dict[str, NodeResult]:
    """One result per node from pytest's JUnit report: the first failure is the reason."""
    results: dict[str, NodeResult] = {}
    for case in report.iter("testcase"):
        match = _ID.match(case.get("name", ""))
        if not match:
            continue
        node, test = match["node"], match["test"].removeprefix("test_").replace("_", " ")
        entry = results.setdefault(node, NodeResult(node=node, passed=True))
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        reason = _reason(failure) if failure is not None else ""
        entry.checks.append({"check": test, "passed": failure is None, "reason": reason})
        if failure is not None and entry.passed:
            entry.passed, entry.reason, entry.hint = False, reason, lab.hint
            entry.starting = reason.startswith(STARTING)
    return results


def check(lab: Lab, inventory: Path, limit: str | None = None, wait: float = 0) -> list[NodeResult]:
    """Run the lab's check on every node (or those the limit names): one result per node,
    a failure with the reason seen. It looks once; with wait, it looks again every two
    seconds until every node passes or the seconds are up."""
    all_nodes = targets(inventory)
    nodes = targets(inventory, limit)
    deadline = time.monotonic() + wait
    while True:
        results = _check_once(lab, nodes, all_nodes)
        if all(r.passed for r in results) or time.monotonic() + 2 > deadline:
            return results
        time.sleep(2)

