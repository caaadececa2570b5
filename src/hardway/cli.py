"""The `hardway` command. Domain logic lives in the modules it calls; this file only
parses arguments, prints, and maps errors to exit codes (0 ok, 1 failed, 2 usage)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hardway.files import atomic_write
from hardway.settings import HardwayError, Settings, UsageError, file_errors

# One console for everything; rich honours NO_COLOR by itself. Markup and emoji codes are
# off: what we print holds roster fields, node output and check reasons, which are data.
# Colour comes only from `styled`.
console = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def styled(label: str, style: str, text: str = "") -> Text:
    """A coloured label, then text printed as it is."""
    return Text.assemble((label, style), text)


def log(message: str) -> None:
    err.print(message)


def handled(func: Callable) -> Callable:
    """Turn our errors into a one-line message and the documented exit code."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with file_errors():
                return func(*args, **kwargs)
        except UsageError as exc:
            err.print(styled("error:", "red", f" {exc}"))
            sys.exit(2)
        except HardwayError as exc:
            err.print(styled("error:", "red", f" {exc}"))
            sys.exit(1)

    return wrapper


def settings() -> Settings:
    return Settings.from_env()


def print_table(title: str, columns: list[str], rows: list[list[str]], output: str) -> None:
    if output == "json":
        click.echo(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=2))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


output_option = click.option("--output", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="How to print the result.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hardway-lab")
def main() -> None:
    """Kubernetes pod networking, the hard way: lab nodes, the mirror, labs and checks."""


# --- mirror -----------------------------------------------------------------------------

@main.group()
def mirror() -> None:
    """The offline mirror of pinned upstream artifacts and lab images."""


@mirror.command("build")
@click.option("--component", "components", multiple=True,
              help="Build only this component (repeatable). Default: all.")
@click.option("--no-images", is_flag=True, help="Skip the offline lab images.")
@click.option("--control-plane", is_flag=True,
              help="Build the control plane too (etcd, the API server, ...: 20+ minutes cold). "
              "Also HARDWAY_CONTROL_PLANE=1.")
@handled
def mirror_build(components: tuple[str, ...], no_images: bool, control_plane: bool) -> None:
    """Build the pinned components (host architecture) from the Go module proxy."""
    from hardway.mirror import artifacts, build

    unknown = set(components) - set(artifacts.COMPONENTS)
    if unknown:
        raise UsageError(f"unknown component {', '.join(sorted(unknown))}: choose from "
                         f"{', '.join(artifacts.COMPONENTS)}")
    s = settings()
    wanted = components or artifacts.wanted(control_plane or s.control_plane)
    store = build.prepare(s, log, wanted, with_images=not no_images)
    console.print(f"mirror ready at {store.root}")


@mirror.command("sync")
@click.option("--arch", "arches", multiple=True, type=click.Choice(["amd64", "arm64"]),
              help="Only this architecture (repeatable). Default: amd64 and arm64.")
@click.option("--kubernetes-base", default=None, help="Instead of the Kubernetes release host.")
@click.option("--github-base", default=None, help="Instead of GitHub (a copy with its layout).")
@handled
def mirror_sync(arches: tuple[str, ...], kubernetes_base: str | None,
                github_base: str | None) -> None:
    """Download the official artifacts and keep only those matching the pinned checksums."""
    from hardway.mirror import artifacts, sync

    bases = {k: v for k, v in (("kubernetes", kubernetes_base), ("github", github_base)) if v}
    store = sync.sync(settings(), log, bases, arches or artifacts.ARCHES)
    console.print(f"mirror synced at {store.root}")


@mirror.command("serve")
@click.option("--address", default=None, help="Address to listen on. Default: the lab bridge's.")
@click.option("--port", type=int, default=None, help="Port. Default: HARDWAY_MIRROR_PORT or 8077.")
@handled
def mirror_serve(address: str | None, port: int | None) -> None:
    """Serve the mirror's files over HTTP until interrupted (Ctrl-C)."""
    from hardway.mirror import serve

    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port: use 1-65535, e.g. 8077")
    s = settings()
    with contextlib.suppress(KeyboardInterrupt):
        serve.serve_forever(s.mirror, address or str(s.host_address), port or s.mirror_port)


@mirror.command("verify")
@handled
def mirror_verify() -> None:
    """Recheck every file in the mirror against its recorded checksum."""
    from hardway.mirror.store import Mirror

    store = Mirror(settings().mirror)
    checked, problems = store.verify()
    for problem in problems:
        err.print(styled("BAD", "red", f" {problem.path}: {problem.reason}"))
    if problems:
        raise HardwayError(f"{len(problems)} problem(s) in {store.root}; rebuild or resync it")
    console.print(f"{checked} files verified in {store.root}")


# --- versions ----------------------------------------------------------------------------

@main.group("versions")
def versions_group() -> None:
    """Releases whose official checksums are pinned; pin another from its published file."""


@versions_group.command("list")
@output_option
@handled
def versions_list(output: str) -> None:
    """Each component's default version and the versions pinned for amd64 and arm64."""
    from hardway import versions

    rows = versions.table()
    print_table("pinned versions", ["component", "default", "amd64", "arm64", "default verified"],
                [[r.component, r.default, " ".join(r.pinned["amd64"]), " ".join(r.pinned["arm64"]),
                  "yes" if r.ready else "NO"] for r in rows], output)
    from hardway.mirror import artifacts

    if not all(r.ready for r in rows if r.component in artifacts.NODE_COMPONENTS):
        raise HardwayError("a default version has no pinned checksum: pin it with `hardway versions add`")
    # The control plane is optional, and three of its components have no official checksum
    # that could be found offline: a connected control_plane play refuses them, a built
    # mirror brings its own.
    unverified = [r.component for r in rows if not r.ready]
    if unverified and output == "table":
        console.print(f"not verified: {', '.join(unverified)}: a connected control_plane play "
                      "refuses them until pinned with `hardway versions add` (docs/mirror.md)")


@versions_group.command("add")
@click.argument("component")
@click.argument("version")
@click.option("--base", default=None, help="Instead of the official host (a copy with its layout).")
@handled
def versions_add(component: str, version: str, base: str | None) -> None:
    """Pin VERSION of COMPONENT from its project's published checksum file (amd64 and arm64)."""
    from hardway import versions

    for arch, value in versions.add(component, version, base).items():
        console.print(f"{component} {version.removeprefix('v')} {arch}: {value}")
    from hardway.mirror import artifacts

    variable = artifacts.VERSION_SOURCES[component][1]
    console.print(f"pinned in {versions.CHECKSUMS}; use it by setting {variable}")


# --- the main job ------------------------------------------------------------------------

def node_options(func: Callable) -> Callable:
    """--os and --login: what nodes made by this command run and how their admin logs in."""
    from hardway.nodes.image import DEFAULT_SYSTEM, SYSTEMS
    from hardway.nodes.lifecycle import LOGINS, SUDO_USER

    func = click.option("--login", type=click.Choice(LOGINS), default="root", show_default=True,
                        help=f"How nodes made now let you in: as root, or like a cloud VM as "
                             f"{SUDO_USER!r} with sudo and root's SSH login off.")(func)
    return click.option("--os", "system", type=click.Choice(list(SYSTEMS)), default=DEFAULT_SYSTEM,
                        show_default=True, help="The system of nodes made now "
                        "(nodes that exist keep theirs).")(func)


@main.command()
@click.option("--count", type=int, default=None, help="How many nodes (1-8). Default: 1.")
@click.option("--no-site", is_flag=True,
              help="Stop before site.yml: nodes booted and the mirror served (molecule's create).")
@click.option("--control-plane", is_flag=True,
              help="Also build the control plane and run it on the first node (site.yml's "
              "control_plane play). Also HARDWAY_CONTROL_PLANE=1.")
@node_options
@handled
def up(count: int | None, no_site: bool, control_plane: bool, system: str, login: str) -> None:
    """Build or reuse the mirror, boot local nodes, provision them with site.yml, check them."""
    import dataclasses

    from hardway import provision

    s = settings()
    if control_plane:
        s = dataclasses.replace(s, control_plane=True)
    results = provision.up(s, count, log, progress_view("node"), site=not no_site,
                           system=system, login=login)
    if no_site:
        console.print("nodes up and the mirror served; site.yml not run")
        return
    print_table("lab nodes", ["node", "result", "detail"],
                [[h.node, "ready" if h.ok else "FAILED", h.detail] for h in results], "table")
    if not all(h.ok for h in results):
        raise HardwayError("some nodes are not ready; see the table above")


# --- labs --------------------------------------------------------------------------------

@main.group("lab")
def lab_group() -> None:
    """The labs, part by part: list, start, check, solve, reset."""


inventory_option = click.option(
    "-i", "--inventory", "inventory_path", type=click.Path(dir_okay=False), default=None,
    help="Inventory to act on. Default: the local lab's inventories/local/hosts.yml.")
limit_option = click.option("--limit", default=None, help="Only these nodes (an Ansible pattern).")


def inventory_file(path: str | None) -> Path:
    inventory = Path(path) if path else settings().inventory / "hosts.yml"
    if not inventory.exists():
        raise UsageError(f"no inventory at {inventory}: run `hardway up` for a local lab, "
                         "or pass -i with your class inventory")
    return inventory


@lab_group.command("list")
@output_option
@handled
def lab_list(output: str) -> None:
    """The labs, part by part, in order, with their goals."""
    from hardway import labs

    grouped = labs.by_part(labs.all_labs())
    if output == "json":
        click.echo(json.dumps([{"part": part.name, "part_title": part.title, "id": lab.id,
                                "title": lab.title, "goal": lab.goal}
                               for part, members in grouped for lab in members], indent=2))
        return
    # Each part begins from the provisioned node, so each is a section of its own.
    table = Table(title="labs", caption="each part begins from the provisioned node")
    for column in ("part", "id", "title", "goal"):
        table.add_column(column)
    for part, members in grouped:
        for index, lab in enumerate(members):
            table.add_row(part.title if index == 0 else "", lab.id, lab.title, lab.goal)
        table.add_section()
    console.print(table)


def step_view() -> Callable:
    """On a terminal, the task a lab step is at; elsewhere nothing until it ends."""
    from hardway import labs

    if not err.is_terminal:
        return labs.quiet
    status = err.status(Text("the lab step"))

    def show(progress) -> None:
        if progress.finished:
            status.stop()
            return
        status.update(Text(f"the lab step: {progress.task}" if progress.task else "the lab step"))
        status.start()
    return show


def say(note: str) -> None:
    """What a lab step tells the student (files moved aside, a lab skipped)."""
    console.print(note, markup=False, highlight=False)


@lab_group.command("start")
@click.argument("lab_id")
@inventory_option
@limit_option
@handled
def lab_start(lab_id: str, inventory_path: str | None, limit: str | None) -> None:
    """Put the nodes where lab LAB_ID begins (repeatable)."""
    from hardway import labs

    lab = labs.find(lab_id)
    labs.start(lab, inventory_file(inventory_path), limit, step_view(), say)
    console.print(f"lab {lab.id} ready: read labs/{lab.folder}/README.md; files in /root/lab/{lab.id}/")


@lab_group.command("solve")
@click.argument("lab_id")
@inventory_option
@limit_option
@handled
def lab_solve(lab_id: str, inventory_path: str | None, limit: str | None) -> None:
    """Bring the nodes to the end state of lab LAB_ID."""
    from hardway import labs

    lab = labs.find(lab_id)
    labs.solve(lab, inventory_file(inventory_path), limit, step_view(), say)
    console.print(f"lab {lab.id} solved")


@lab_group.command("reset")
@inventory_option
@limit_option
@handled
def lab_reset(inventory_path: str | None, limit: str | None) -> None:
    """Remove every lab pod, the CNI configs, the staged files and what each lab made by hand."""
    from hardway import labs

    labs.reset(inventory_file(inventory_path), limit, step_view(), say)
    console.print("nodes reset: where each part begins")


@lab_group.command("check")
@click.argument("lab_id")
@inventory_option
@limit_option
@output_option
@click.option("--wait", type=click.FloatRange(0, 600), default=0, show_default=True,
              help="Look again every 2 s for up to this many seconds until the check passes.")
@handled
def lab_check(lab_id: str, inventory_path: str | None, limit: str | None, output: str,
              wait: float) -> None:
    """Check lab LAB_ID on every node, as it is now: pass, or what was seen and a hint.
    Exit 1 on failure."""
    from hardway import labs

    lab = labs.find(lab_id)
    results = labs.check(lab, inventory_file(inventory_path), limit, wait=wait)
    if output == "json":
        click.echo(json.dumps({"lab": lab.id, "nodes": [r.as_dict() for r in results]}, indent=2))
    else:
        for r in results:
            if r.passed:
                console.print(styled("PASS", "green", f" {r.node}: lab {lab.id} {lab.title}"))
            elif r.starting:
                console.print(styled("WAIT", "yellow", f" {r.node}: {r.reason}"))
            else:
                console.print(styled("FAIL", "red", f" {r.node}: {r.reason}"))
                console.print(f"     hint: {r.hint}")
    if not all(r.passed for r in results):
        sys.exit(1)


# --- class -------------------------------------------------------------------------------

@main.group("class")
def class_group() -> None:
    """A classroom: a roster to an inventory, provisioning, and a progress report."""


@class_group.command("init")
@click.argument("roster", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The class; its inventory goes to inventories/NAME/.")
@click.option("--pod-range", default="10.200.0.0/16", show_default=True,
              help="Private range every machine's pod network is carved from.")
@click.option("--pod-prefix", type=int, default=24, show_default=True,
              help="Size of each machine's pod network.")
@click.option("--mirror", "mirror_url", default=None,
              help="Fetch from this served mirror (URL) with this machine's mirror checksums, "
                   "instead of the official release hosts.")
@click.option("--vars", "vars_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A YAML file of extra variables for every machine.")
@click.option("--control-plane", is_flag=True,
              help="A control plane per student, on their first machine (the control plane's "
                   "labs c1-c5).")
@click.option("--force", is_flag=True, help="Replace an existing class of that name.")
@handled
def class_init(roster: Path, name: str, pod_range: str, pod_prefix: int, mirror_url: str | None,
               vars_file: Path | None, control_plane: bool, force: bool) -> None:
    """Check ROSTER (CSV: student,machine1,machine2,user,port,key) and write the inventory."""
    from hardway.classroom import roster as rosters

    path, warnings = rosters.init(settings(), roster, name, pod_range, pod_prefix, mirror_url,
                                  vars_file, force, control_plane)
    for warning in warnings:
        err.print(styled("warning:", "yellow", f" {warning}"))
    console.print(f"class {name}: inventory written to {path}; next: `hardway class up {name}`")


@class_group.command("up")
@click.argument("name")
@click.option("--retry-failed", is_flag=True, help="Only the machines not ready after the last run.")
@click.option("--forks", type=click.IntRange(1, 200), default=None,
              help="Machines worked on at once. Default: all of them, up to 50.")
@output_option
@handled
def class_up(name: str, retry_failed: bool, forks: int | None, output: str) -> None:
    """Provision every machine of class NAME at once; a table of which are ready and why not."""
    from hardway.classroom import up as class_up_
    from hardway.classroom.model import Classroom

    s = settings()
    classroom = Classroom.open(s, name)
    results = class_up_.up(s, classroom, retry_failed, forks, progress_view("machine"), log)
    print_table(f"class {name}", ["machine", "student", "result", "stage", "reason"],
                [[r.machine, r.student, r.status, r.stage, r.reason] for r in results], output)
    bad = [r.machine for r in results if r.status != "ready"]
    if bad:
        raise HardwayError(f"{len(bad)} machine(s) not ready ({', '.join(bad)}); fix the cause "
                           f"and run `hardway class up {name} --retry-failed`")


def progress_view(noun: str) -> Callable:
    """Live per-stage counts of hosts (nodes or machines) on a terminal; on anything else,
    one line when a stage is done."""
    from rich.live import Live

    if err.is_terminal:
        live = Live(console=err, refresh_per_second=2, transient=False)

        def show(progress) -> None:
            table = Table(title="provisioning", title_justify="left")
            for column in ("stage", "done", "working", "stopped"):
                table.add_column(column)
            for stage, past, working, stopped in progress.stage_rows():
                table.add_row(stage, str(past), str(working), str(stopped) if stopped else "")
            if not live.is_started:
                live.start()
            live.update(table)
            if progress.finished:
                live.stop()
        return show

    printed: set[str] = set()

    def show_lines(progress) -> None:
        for stage, past, working, stopped in progress.stage_rows():
            total = past + working + stopped
            if stage not in printed and total and not working and (past or progress.finished):
                printed.add(stage)
                log(f"stage {stage}: {past} {noun}(s) through" +
                    (f", {stopped} stopped" if stopped else ""))
    return show_lines


@class_group.command("report")
@click.argument("name")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as one self-contained HTML page.")
@click.option("--watch", type=click.IntRange(5, 3600), default=None, metavar="SECONDS",
              help="Check again every SECONDS until interrupted.")
@click.option("--parallel", type=click.IntRange(1, 64), default=10, show_default=True,
              help="Labs checked at once (each check covers all its machines).")
@output_option
@handled
def class_report(name: str, html_file: Path | None, watch: int | None, parallel: int,
                 output: str) -> None:
    """Every student x every lab: pass, fail (with reason), skipped, not reached."""
    from hardway.classroom import page, report
    from hardway.classroom.model import Classroom

    classroom = Classroom.open(settings(), name)
    # Fail now, not after checking every machine.
    if html_file and not html_file.parent.is_dir():
        raise UsageError(f"--html {html_file}: the folder {html_file.parent} does not exist: "
                         "create it, or write the page elsewhere")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            result = report.collect(classroom, parallel)
            if html_file:
                atomic_write(html_file, page.render(result, refresh=watch).encode())
            if output == "json":
                click.echo(json.dumps(result.as_dict(), indent=2))
            else:
                if watch and console.is_terminal:
                    console.clear()
                print_report(result)
            if not watch:
                return
            time.sleep(watch)


def print_report(result) -> None:
    from hardway import labs

    styles = {"pass": styled("pass", "green"), "fail": styled("FAIL", "bold red"),
              "skipped": styled("skip", "yellow"), "unreachable": styled("?", "dim"),
              "not reached": styled("·", "dim")}
    table = Table(title=f"class {result.name}: lab progress",
                  caption="skip: a later lab was started first · ?: unreachable · ·: not reached")
    for column in ["student", "at", *[lab.id for lab in result.labs]]:
        table.add_column(column, no_wrap=True)
    # The first row names each part (labs/parts.yml) above its first lab.
    starts = {members[0].id: part.name for part, members in labs.by_part(result.labs)}
    table.add_row("", "", *[styled(starts.get(lab.id, ""), "bold") for lab in result.labs],
                  end_section=True)
    for row in result.students:
        down = [n for n, state in row.machines.items() if state != "ok"]
        who = row.student + (f" ({len(down)} down)" if down else "")
        table.add_row(who, row.current or "-", *[styles[row.labs[lab.id].status]
                                                  for lab in result.labs])
    console.print(table)
    for row in result.students:
        for name, state in row.machines.items():
            if state != "ok":
                console.print(f"{row.student}: {name} unreachable: {state}")
        for lab in result.labs:
            cell = row.labs[lab.id]
            if cell.status == "fail":
                console.print(f"{row.student} lab {lab.id} fail on {cell.machine}: {cell.reason}")
                console.print(f"    hint: {cell.hint}")


# --- doctor and nodes ------------------------------------------------------------------

@main.command()
@output_option
@handled
def doctor(output: str) -> None:
    """Check that this host can run local lab nodes; print each finding with its fix."""
    from hardway.nodes import host

    findings = host.checks(settings())
    rows = [[f.name, "ok" if f.ok else ("FAIL" if f.blocking else "note"), f.detail,
             "" if f.ok else f.fix] for f in findings]
    print_table("hardway doctor", ["check", "result", "seen", "fix"], rows, output)
    if any(not f.ok and f.blocking for f in findings):
        sys.exit(1)


@main.group()
def nodes() -> None:
    """Local lab nodes: systemd-nspawn machine containers on this host."""


def local_lab():
    from hardway.nodes.lifecycle import LocalLab

    return LocalLab(settings(), log)


@nodes.command("up")
@click.option("--count", type=int, default=None,
              help="How many nodes (1-8). Default: the nodes that exist, or 1.")
@node_options
@handled
def nodes_up(count: int | None, system: str, login: str) -> None:
    """Boot the nodes (idempotent) and write inventories/local/hosts.yml."""
    the_lab = local_lab()
    started = the_lab.up(count, system, login)
    console.print(f"{len(started)} node(s) running; inventory: {the_lab.s.inventory / 'hosts.yml'}")


@nodes.command("down")
@handled
def nodes_down() -> None:
    """Stop and remove every node, the bridge and the generated inventory."""
    left = local_lab().down()
    if left:
        raise HardwayError("left behind: " + "; ".join(left))
    console.print("all nodes removed; nothing left behind")


@nodes.command("restart")
@click.argument("name")
@handled
def nodes_restart(name: str) -> None:
    """Reboot one node; its containers, kubelet and static pods come back."""
    node = local_lab().restart(name)
    console.print(f"{node.name} running again at {node.address}")


@nodes.command("list")
@output_option
@handled
def nodes_list(output: str) -> None:
    """The nodes, their addresses and whether they run."""
    rows = [[n.name, n.address, "running" if n.running else "stopped", n.system, n.user,
             n.machine, str(n.pid or "")] for n in local_lab().load()]
    print_table("lab nodes", ["name", "address", "state", "os", "login", "machine", "pid"], rows,
                output)


if __name__ == "__main__":
    main()
