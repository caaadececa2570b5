"""`hardway class`: rosters, the inventory they become, progress events and the page.
The real-node run (class up, report, the page in Chromium) is tests/integration/test_class.py."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardway import labs
from hardway.children import ansible_env, tool
from hardway.classroom import page, roster
from hardway.classroom.model import Classroom, load_yaml
from hardway.classroom.report import Cell, Report, StudentRow
from hardway.classroom.up import results
from hardway.cli import main
from hardway.labs import Lab
from hardway.mirror import artifacts
from hardway.playbook import CLASS_END, CONTROL_PLANE_STAGES, Progress, one_line, site_stages
from hardway.settings import Settings, UsageError

HEADER = "student,machine1,machine2,user,port,key\n"


def settings(tmp_path: Path, monkeypatch) -> Settings:
    monkeypatch.setenv("HARDWAY_CLASSES", str(tmp_path / "classes"))
    return Settings.from_env({"HARDWAY_STATE": str(tmp_path / "state"),
                              "HARDWAY_CACHE": str(tmp_path / "cache")})


def init(tmp_path, monkeypatch, text: str, **options):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    args = {"pod_range": "10.200.0.0/16", "prefix": 24, "mirror_url": None, "vars_file": None,
            "force": False, **options}
    return roster.init(settings(tmp_path, monkeypatch), path, "k8s-101", **args)


def test_a_roster_becomes_an_inventory_with_pod_networks_and_lab_08_pairs(tmp_path, monkeypatch):
    key = tmp_path / "id"
    key.write_text("key")
    hosts, warnings = init(tmp_path, monkeypatch, HEADER +
                           f"Ada,192.0.2.11,192.0.2.12,,,{key}\n"
                           "# a comment line\n"
                           "bob,192.0.2.13,,student,2222,\n"
                           "cy,lab-cy.example.org,,,,\n"
                           "dee,192.0.2.15,,,,\n")
    data = load_yaml(hosts.read_text())["all"]
    machines = data["children"]["lab_nodes"]["hosts"]
    assert list(machines) == ["ada-1", "ada-2", "bob-1", "cy-1", "dee-1"]
    assert machines["ada-1"]["lab_peers"] == ["ada-2"] and machines["ada-2"]["lab_peers"] == ["ada-1"]
    # One-machine students are paired in roster order; the odd one out is warned about.
    assert machines["bob-1"]["lab_peers"] == ["cy-1"] and machines["cy-1"]["lab_peers"] == ["bob-1"]
    assert machines["dee-1"]["lab_peers"] == []
    assert len(warnings) == 1 and "row 6" in warnings[0] and "dee" in warnings[0]
    assert machines["bob-1"]["ansible_user"] == "student" and machines["bob-1"]["ansible_port"] == 2222
    assert machines["ada-1"]["ansible_ssh_private_key_file"] == str(key)
    nets = [ipaddress.IPv4Network(m["lab_pod_cidr"]) for m in machines.values()]
    assert all(n.prefixlen == 24 and n.subnet_of(ipaddress.IPv4Network("10.200.0.0/16")) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    assert data["children"]["student_ada"]["hosts"] == {"ada-1": None, "ada-2": None}
    class_vars = load_yaml((hosts.parent / "group_vars/all.yml").read_text())
    assert class_vars["download_push"] is True and class_vars["lab_class"] == "k8s-101"
    assert f"UserKnownHostsFile=\"{hosts.parent / 'known_hosts'}\"" in class_vars["ansible_ssh_common_args"]
    assert (hosts.parent / "roster.csv").exists()


def ansible(inventory: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("ansible"), "-i", str(inventory), "all", *args], cwd=cwd,
                          env=ansible_env(), capture_output=True, text=True, timeout=120)


def test_ansible_templates_nothing_that_came_from_a_roster(tmp_path, monkeypatch):
    """Even a value that got past the roster's checks reaches Ansible as text: a real
    `ansible -m ping` (to a closed port) runs none of the lookups below."""
    def pwn(what: str) -> str:
        return f"{{{{ lookup('pipe', 'touch {tmp_path}/pwned-{what}; echo root') }}}}"

    machine = roster.RosterMachine(name="ada-1", student=pwn("student"), address="127.0.0.1",
                             user=pwn("user"), port=1, key=pwn("key"), row=2,
                             pod_cidr=pwn("pod"), peers=[pwn("peer")])
    hosts, class_vars = roster.inventory([roster.Student("ada", [machine])], "k8s",
                                         tmp_path / "k8s", {})
    inventory = roster.write(tmp_path / "k8s", hosts, class_vars, "", force=False)
    result = ansible(inventory, tmp_path, "-m", "ansible.builtin.ping",
                     "-e", "ansible_ssh_extra_args='-o ConnectTimeout=5'")
    assert "UNREACHABLE" in result.stdout, result.stdout + result.stderr
    # Variables a play reads (not only connection ones) stay text when a task uses them.
    used = ansible(inventory, tmp_path, "-c", "local", "-m", "ansible.builtin.debug",
                   "-a", "msg={{ [lab_student, lab_pod_cidr, lab_peers] | to_json }}")
    assert used.returncode == 0, used.stdout + used.stderr
    assert "lookup('pipe', 'touch" in used.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) == []


def test_a_roster_reaches_ansible_and_the_lab_checks_unchanged(tmp_path, monkeypatch):
    key = tmp_path / "keys" / "ada key"
    key.parent.mkdir()
    key.write_text("key")
    hosts, _ = init(tmp_path, monkeypatch, HEADER + f"ada,127.0.0.1,,student_1,2202,{key}\n"
                    "bob,localhost,,,,\n")
    result = ansible(hosts, tmp_path, "--limit", "ada-1", "-c", "local", "-m", "ansible.builtin.debug",
                     "-a", "msg={{ [ansible_host, ansible_user, ansible_port, "
                     "ansible_ssh_private_key_file, lab_student, lab_peers] | to_json }}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f'"msg": "[\\"127.0.0.1\\", \\"student_1\\", 2202, \\"{key}\\", \\"ada\\", '
            '[\\"bob-1\\"]]"') in result.stdout
    monkeypatch.setenv("HOME", str(tmp_path))  # the lab checks' inventory cache
    ada, bob = labs.targets(hosts)
    assert (ada.address, ada.user, ada.port, ada.key) == ("127.0.0.1", "student_1", 2202, str(key))
    assert ada.variables["lab_peers"] == ["bob-1"] and bob.address == "localhost"


def test_a_class_folder_with_a_space_reaches_ssh_as_one_path(tmp_path, monkeypatch):
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(HEADER + "ada,127.0.0.1,,,1,\n")
    s = settings(tmp_path, monkeypatch)
    monkeypatch.setenv("HARDWAY_CLASSES", str(tmp_path / "my classes"))
    hosts, _ = roster.init(s, roster_file, "k8s", "10.200.0.0/16", 24, None, None, False)
    known = tmp_path / "my classes/k8s/known_hosts"
    # An ssh that writes down the arguments it was given, one per line, and fails.
    ssh = tmp_path / "ssh"
    ssh.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/ssh-args\nexit 255\n")
    ssh.chmod(0o755)
    ansible(hosts, tmp_path, "-m", "ansible.builtin.ping", "-e", f"ansible_ssh_executable={ssh}")
    assert f'UserKnownHostsFile="{known}"' in (tmp_path / "ssh-args").read_text().splitlines()
    monkeypatch.setenv("HOME", str(tmp_path))  # the lab checks' inventory cache
    [ada] = labs.targets(hosts)
    assert ("UserKnownHostsFile", str(known)) in ada.ssh_options
    assert f'UserKnownHostsFile "{known}"' in labs.ssh_config([ada])


def test_a_relative_key_path_is_relative_to_the_roster(tmp_path, monkeypatch):
    folder = tmp_path / "course"
    (folder / "keys").mkdir(parents=True)
    (folder / "keys/id").write_text("key")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/other").write_text("key")
    (folder / "roster.csv").write_text(HEADER + "ada,192.0.2.1,,,,keys/id\nbob,192.0.2.2,,,,keys/other\n")
    monkeypatch.chdir(tmp_path)
    s = settings(tmp_path, monkeypatch)
    with pytest.raises(roster.RosterError) as caught:
        roster.init(s, Path("course/roster.csv"), "k8s", "10.200.0.0/16", 24, None, None, False)
    assert caught.value.problems == [f"row 3: key file {folder / 'keys/other'} does not exist: give "
                                     "the path of the SSH private key on this machine (absolute, or "
                                     "relative to the roster), or leave it empty"]
    (folder / "roster.csv").write_text(HEADER + "ada,192.0.2.1,,,,keys/id\n")
    hosts, _ = roster.init(s, Path("course/roster.csv"), "k8s", "10.200.0.0/16", 24, None, None,
                           False)
    machine = load_yaml(hosts.read_text())["all"]["children"]["lab_nodes"]["hosts"]["ada-1"]
    assert machine["ansible_ssh_private_key_file"] == str(folder / "keys/id")


@pytest.mark.parametrize("command", ["up", "report"])
def test_a_class_name_is_never_a_path(tmp_path, monkeypatch, command):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "hosts.yml").write_text("all: {}\n")
    (tmp_path / "classes").mkdir()
    env = {"HARDWAY_CLASSES": str(tmp_path / "classes"), "HARDWAY_STATE": str(tmp_path / "state")}
    result = CliRunner().invoke(main, ["class", command, "../outside"], env=env)
    assert result.exit_code == 2
    assert result.output == ("error: class name '../outside' is not usable as a folder name: use "
                             "lower-case letters, digits, dashes and underscores, e.g. k8s-net-2026\n")
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(("rows", "expected"), [
    ("ada,192.0.2.11,,,,\nbob,192.0.2.11,,,,\n", "row 3: machine 192.0.2.11 (port 22) is already on row 2"),
    ("ada,192.0.2.11,192.0.2.11,,,\n", "row 2: machine 192.0.2.11 (port 22) is already on row 2"),
    (",192.0.2.11,,,,\n", "row 2: no student name"),
    ("ada,,,,,\n", "row 2: student ada has no machine1"),
    ("ada,192.0.2.11,,,,\nada,192.0.2.12,,,,\n", "row 3: student ada is already on row 2"),
    ("ada,192.0.2.300,,,,\n", "row 2: machine1 '192.0.2.300' is neither an IP address nor a host name"),
    ("ada,192.0.2.11,,,ssh,\n", "row 2: port 'ssh' is not a port"),
    ("ada,192.0.2.11,,,,/nonexistent/key\n", "row 2: key file /nonexistent/key does not exist:"),
    ("Ada Lovelace,192.0.2.11,,,,\n", "row 2: student 'Ada Lovelace' cannot name a machine"),
    ("ada,192.0.2.11,,,,,extra\n", "row 2: 7 fields for 6 columns"),
    ("ada,192.0.2.11,,\"{{ lookup('pipe','id') }}\",,\n", "row 2: user \"{{ lookup('pipe','id') }}\" "
     "is not a login name"),
    ("ada,192.0.2.11,,a b,,\n", "row 2: user 'a b' is not a login name"),
    ("ada,192.0.2.11,,-oProxyCommand=id,,\n", "row 2: user '-oProxyCommand=id' is not a login name"),
    ("ada,192.0.2.11,,,,\"{{lookup('pipe','id')}}\"\n", "row 2: key path \"{{lookup('pipe','id')}}\" "
     "holds {{, {%, {# or a double quote"),
    ("ada,192.0.2.11,,,,{#x\n", "holds {{, {%, {# or a double quote"),
    ("ada,192.0.2.11,,ro\x1bot,,\n", "row 2: a control character in user"),
    ("", "no students"),
])
def test_bad_rows_are_named_with_the_fix_and_nothing_is_written(tmp_path, monkeypatch, rows,
                                                                expected):
    with pytest.raises(UsageError) as caught:
        init(tmp_path, monkeypatch, HEADER + rows)
    assert expected in str(caught.value)
    assert "nothing was written" in str(caught.value)
    assert not (tmp_path / "classes").exists()


def test_every_bad_row_is_reported_at_once(tmp_path, monkeypatch):
    with pytest.raises(roster.RosterError) as caught:
        init(tmp_path, monkeypatch, HEADER + ",192.0.2.1,,,,\nok,192.0.2.2,,,,\nbad,,,,,\n")
    assert [p.split(":")[0] for p in caught.value.problems] == ["row 2", "row 4"]


def test_a_wrong_header_names_the_columns(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="unknown column.*adress.*missing column.*machine1"):
        init(tmp_path, monkeypatch, "student,adress\nada,192.0.2.1\n")


@pytest.mark.parametrize(("pod_range", "prefix", "expected"), [
    ("10.200.0.0/33", 24, "is not an IPv4 network"),
    ("10.200.0.1/16", 24, "is not an IPv4 network"),
    ("8.8.0.0/16", 24, "not a private range"),
    ("10.200.0.0/24", 20, "does not fit"),
    ("10.32.0.0/16", 24, r"overlaps lab_service_cidr 10\.32\.0\.0/24 \(labs/\*/vars\.yml\)"),
    ("127.0.0.0/16", 24, r"overlaps 127\.0\.0\.0/8 \(loopback\)"),
    ("169.254.0.0/16", 24, "link-local, with the cloud metadata address"),
    ("0.0.0.0/16", 24, "'this network', which no host can use"),
    ("240.0.0.0/16", 24, "reserved"),
    ("100.64.0.0/16", 24, "not a private range"),
])
def test_a_bad_pod_range_is_refused(tmp_path, monkeypatch, pod_range, prefix, expected):
    with pytest.raises(UsageError, match=expected):
        init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", pod_range=pod_range,
             prefix=prefix)


def test_more_machines_than_the_range_holds_names_the_first_row_left_out(tmp_path, monkeypatch):
    rows = "".join(f"s{i},192.0.2.{i},,,,\n" for i in range(1, 6))
    with pytest.raises(UsageError) as caught:
        init(tmp_path, monkeypatch, HEADER + rows, pod_range="10.200.0.0/22", prefix=24)
    assert "row 6: no pod network left for s5-1" in str(caught.value)
    assert "holds 4 /24 networks and the class needs 5" in str(caught.value)
    assert not (tmp_path / "classes").exists()


def test_every_machine_inside_the_pod_range_or_a_lab_range_is_named(tmp_path, monkeypatch):
    with pytest.raises(roster.RosterError) as caught:
        init(tmp_path, monkeypatch, HEADER + "ada,10.200.7.1,,,,\nbob,192.0.2.2,,,,\n"
             "cy,10.32.0.5,10.200.9.9,,,\n")
    assert [p.split(": the")[0] for p in caught.value.problems] == [
        "row 2: machine 10.200.7.1 lies in the pod range 10.200.0.0/16: choose a --pod-range "
        "clear of the machines, or give the machine another address",
        "row 4: machine 10.32.0.5 lies in lab_service_cidr 10.32.0.0/24 (labs/*/vars.yml): choose "
        "a --pod-range clear of the machines, or give the machine another address",
        "row 4: machine 10.200.9.9 lies in the pod range 10.200.0.0/16: choose a --pod-range "
        "clear of the machines, or give the machine another address"]


def test_an_existing_class_is_kept_unless_forced_and_its_known_hosts_survive(tmp_path, monkeypatch):
    hosts, _ = init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n")
    (hosts.parent / "known_hosts").write_text("192.0.2.11 ssh-ed25519 AAAA\n")
    with pytest.raises(UsageError, match="already exists.*--force"):
        init(tmp_path, monkeypatch, HEADER + "bob,192.0.2.12,,,,\n")
    assert "ada-1" in hosts.read_text()
    init(tmp_path, monkeypatch, HEADER + "bob,192.0.2.12,,,,\n", force=True)
    assert "bob-1" in hosts.read_text() and "ada-1" not in hosts.read_text()
    assert (hosts.parent / "known_hosts").read_text().startswith("192.0.2.11")
    assert sorted(p.name for p in hosts.parent.parent.iterdir()) == ["k8s-101"]


def test_a_new_class_starts_with_no_progress_but_a_forced_re_init_keeps_it(tmp_path, monkeypatch):
    stale = tmp_path / "state/classes/k8s-101/progress.json"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"ada": {"03": {}}}')
    init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n")
    assert not stale.exists()
    stale.parent.mkdir(parents=True)
    stale.write_text('{"ada": {"03": {}}}')
    init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.12,,,,\n", force=True)
    assert stale.exists()


def test_extra_vars_must_be_a_mapping(tmp_path, monkeypatch):
    extra = tmp_path / "vars.yml"
    extra.write_text("- a list\n")
    with pytest.raises(UsageError, match="must hold a mapping"):
        init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", vars_file=extra)


def test_mirror_needs_a_url_and_a_local_mirror(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="is not a URL"):
        init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", mirror_url="10.0.0.1:8077")
    with pytest.raises(UsageError, match="holds none: run `hardway mirror build`"):
        init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", mirror_url="http://10.0.0.1:8077")


def control_plane_checksums(without: str = "") -> dict:
    """download_checksums with one made-up entry per control-plane component at its pinned
    version, on this machine's architecture (as a mirror built with it holds)."""
    pinned = artifacts.pinned_versions()
    return {c: {artifacts.host_arch(): {pinned[c]: "sha256:" + "0" * 64}}
            for c in artifacts.CONTROL_PLANE_COMPONENTS if c != without}


def test_a_class_with_a_control_plane_has_one_per_student_on_their_first_machine(tmp_path,
                                                                                  monkeypatch):
    extra = tmp_path / "vars.yml"
    extra.write_text(roster.dump_yaml({"download_checksums": control_plane_checksums()}))
    hosts, _ = init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,192.0.2.12,,,\n"
                    "bob,192.0.2.13,,,,\ncy,192.0.2.14,,,,\n", vars_file=extra, control_plane=True)
    groups = load_yaml(hosts.read_text())["all"]["children"]
    assert list(groups["control_plane"]["hosts"]) == ["ada-1", "bob-1", "cy-1"]
    classroom = Classroom.open(settings(tmp_path, monkeypatch), "k8s-101")
    assert classroom.control_plane_machines() == ["ada-1", "bob-1", "cy-1"]
    # class up shows the control plane's stages, after the preflight and before the node's.
    stages = site_stages(True, CLASS_END)
    assert stages[:1 + len(CONTROL_PLANE_STAGES)] == ("preflight", *CONTROL_PLANE_STAGES)
    assert stages[-1] == "ready"

    # A forced re-init (an edited roster) keeps the control planes' CAs and certificates.
    (hosts.parent / "pki/ada-1").mkdir(parents=True)
    (hosts.parent / "pki/ada-1/ca.key").write_text("the CA's key")
    init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", vars_file=extra,
         control_plane=True, force=True)
    assert (hosts.parent / "pki/ada-1/ca.key").read_text() == "the CA's key"

    # Without --control-plane, no group: class.yml's control-plane play touches no machine.
    init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", force=True)
    assert "control_plane" not in load_yaml(hosts.read_text())["all"]["children"]
    assert classroom.control_plane_machines() == []


def test_a_control_plane_with_nothing_to_verify_it_against_is_refused_before_writing(
        tmp_path, monkeypatch):
    # The official checksums as a connected machine may have them: the scheduler's missing
    # (`hardway versions add` would pin it).
    monkeypatch.setattr(artifacts, "upstream_checksums",
                        lambda: control_plane_checksums(without="kube_scheduler"))
    scheduler = f"kube_scheduler '{artifacts.pinned_versions()['kube_scheduler']}'"
    with pytest.raises(UsageError, match=f"pinned official checksums hold.*no .*{scheduler}: pin "
                                         "them.*hardway versions add.*HARDWAY_CONTROL_PLANE=1"):
        init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", control_plane=True)
    # A --vars file's checksums replace the official ones: the fix is in that file. Even an
    # empty set of them.
    extra = tmp_path / "vars.yml"
    for checksums in (control_plane_checksums(without="kube_scheduler"), {}):
        extra.write_text(roster.dump_yaml({"download_checksums": checksums}))
        with pytest.raises(UsageError, match=f"--vars's download_checksums hold.*no .*{scheduler}"
                                             ".*: add them to download_checksums in the --vars"):
            init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", vars_file=extra,
                 control_plane=True)
    # What --vars does not give comes from the pinned set, which now has every one.
    monkeypatch.setattr(artifacts, "upstream_checksums", control_plane_checksums)
    extra.write_text(roster.dump_yaml({"lab_class_note": "no checksums here"}))
    init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", vars_file=extra,
         control_plane=True)
    assert (tmp_path / "classes/k8s-101/hosts.yml").exists()


def test_a_forced_re_init_keeps_only_the_cas_of_machines_that_still_run_a_control_plane(
        tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "upstream_checksums", control_plane_checksums)
    hosts, _ = init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\nbob,192.0.2.12,,,,\n",
                    control_plane=True)
    for machine in ("ada-1", "bob-1"):
        (hosts.parent / "pki" / machine).mkdir(parents=True)
        (hosts.parent / "pki" / machine / "ca.key").write_text(f"{machine}'s CA key")
    # bob leaves; a newcomer later given the name bob must not get his CA.
    init(tmp_path, monkeypatch, HEADER + "ada,192.0.2.11,,,,\n", control_plane=True, force=True)
    assert (hosts.parent / "pki/ada-1/ca.key").read_text() == "ada-1's CA key"
    assert not (hosts.parent / "pki/bob-1").exists()


def event(host: str, stage: str, status: str, msg: str = "") -> dict:
    return {"event": "result", "host": host, "stage": stage, "status": status, "task": "t",
            "msg": msg, "stdout": ""}


def test_progress_counts_machines_per_stage_and_keeps_the_reason_of_a_failure():
    progress = Progress(["a", "b", "c"], site_stages(False, CLASS_END))
    progress.feed(event("a", "preflight", "ok"))
    progress.feed(event("b", "preflight", "ok"))
    progress.feed(event("c", "preflight", "unreachable", "Task failed: Data could not be sent "
                        "to remote host. ssh: connect to host 10.0.0.3 port 22: No route to host"))
    progress.feed(event("a", "runc", "changed"))
    progress.feed(event("a", "download", "changed"))  # included by runc: still runc
    progress.feed(event("b", "containerd", "failed", "config rejected"))
    progress.feed(event("b", "containerd", "ok"))  # rescued: the host carries on
    progress.feed(event("b", "kubelet", "failed", "kubelet did not come up"))
    rows = {stage: (past, working, stopped) for stage, past, working, stopped in progress.stage_rows()}
    assert rows["preflight"] == (2, 0, 1)
    assert rows["runc"] == (1, 1, 0)
    assert rows["containerd"] == (1, 0, 0)
    assert rows["kubelet"] == (0, 0, 1)
    progress.feed({"event": "stats", "hosts": {
        "a": {"failures": 0, "unreachable": 0}, "b": {"failures": 1, "unreachable": 0},
        "c": {"failures": 0, "unreachable": 1}}})
    found = {r.machine: r for r in results(progress, {"a": "s1", "b": "s1", "c": "s2"})}
    assert found["a"].status == "ready"
    assert (found["b"].status, found["b"].stage) == ("failed", "kubelet")
    assert found["b"].reason == "t: kubelet did not come up"
    assert found["c"].status == "unreachable"
    assert found["c"].reason == "ssh: connect to host 10.0.0.3 port 22: No route to host"
    # What ssh said when class up logged in first wins over Mitogen's wording; only for a
    # machine Ansible could not reach either.
    said = "the SSH host key of 10.0.0.3 changed since Ansible first reached it"
    found = {r.machine: r for r in results(progress, {"a": "s1", "b": "s1", "c": "s2"},
                                           {"c": said, "a": "ignored"})}
    assert found["c"].reason == said and found["a"].reason == ""


def a_report() -> Report:
    labs = [Lab(id="n1", folder="n1-z", title="Zero", goal="g", hint="h", part="node", number=1),
            Lab(id="01", folder="01-x", title="One <b>", goal="g", hint="do <this>", part="pods",
                number=1),
            Lab(id="02", folder="02-y", title="Two", goal="g", hint="then that", part="pods",
                number=2)]
    rows = [
        StudentRow("zed", {"zed-1": "ok"}, "02",
                   {"n1": Cell("not reached"), "01": Cell("pass"),
                    "02": Cell("fail", "nginx <none> answered", "then that", "zed-1")}),
        StudentRow("amy", {"amy-1": "ssh: no route"}, None,
                   {"n1": Cell("unreachable"), "01": Cell("unreachable", "amy-1: ssh: no route"),
                    "02": Cell("unreachable")}),
    ]
    return Report(name="k8s<101>", generated=0, labs=labs, students=rows)


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    html = page.render(a_report())
    assert "<script src" not in html and "<link" not in html and "http" not in html
    assert "k8s&lt;101&gt;" in html and "nginx &lt;none&gt; answered" in html
    assert 'data-hint="then that"' in html and 'title="One &lt;b&gt;"' in html
    assert html.count('<tr data-student=') == 2
    assert "refresh" not in html
    assert '<meta http-equiv="refresh" content="30">' in page.render(a_report(), refresh=30)
    # One column group per part, as wide as its labs.
    assert '<th colspan="1" class="part" scope="colgroup">A node by hand</th>' in html
    assert '<th colspan="2" class="part" scope="colgroup">Pod networking</th>' in html


def test_report_counts_and_json_shape():
    report = a_report()
    assert report.counts()["01"] == {"pass": 1, "fail": 0, "skipped": 0, "not reached": 0,
                                     "unreachable": 1}
    data = report.as_dict()
    assert [lab["id"] for lab in data["labs"]] == ["n1", "01", "02"]
    assert data["parts"] == [{"name": "node", "title": "A node by hand", "labs": ["n1"]},
                             {"name": "pods", "title": "Pod networking", "labs": ["01", "02"]}]
    assert data["students"][0]["labs"]["02"] == {"status": "fail", "reason": "nginx <none> answered",
                                                 "hint": "then that", "machine": "zed-1"}


def test_class_up_logs_in_once_and_keeps_what_ssh_said_for_a_machine_it_cannot_reach(
        tmp_path, monkeypatch):
    from hardway.classroom.up import learn_host_keys

    (tmp_path / "roster.csv").write_text(HEADER + "ada,127.0.0.1,,,1,\nbob,127.0.0.2,,,1,\n")
    s = settings(tmp_path, monkeypatch)
    hosts, _ = roster.init(s, tmp_path / "roster.csv", "k8s", "10.200.0.0/16", 24, None, None, False)
    monkeypatch.setenv("HOME", str(tmp_path))  # the inventory cache
    refused = learn_host_keys(hosts, ["ada-1"])
    assert refused == {"ada-1": "ssh: connect to host 127.0.0.1 port 1: Connection refused"}


@pytest.mark.parametrize(("known", "shown"), [
    ("/c/k8s/known_hosts", "/c/k8s/known_hosts"),
    ("/my classes/k8s/known_hosts", "'/my classes/k8s/known_hosts'")])
def test_a_changed_host_key_is_explained_with_the_command_that_forgets_it(known, shown):
    message = ("Task failed: Data could not be sent to remote host \"10.0.0.5\". ssh: "
               "@@@@@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@@@@@ ... "
               f"Offending ED25519 key in {known}:3 Host key for 10.0.0.5 has "
               "changed and you have requested strict checking. Host key verification failed.")
    assert one_line(message) == (
        "the SSH host key of 10.0.0.5 changed since Ansible first reached it (a reinstalled "
        f"machine?); if that is expected: ssh-keygen -R 10.0.0.5 -f {shown}")


class FakeClass:
    """What report.collect asks of a class: its students' machines and its saved progress."""

    name, inventory = "k8s", Path("hosts.yml")

    def __init__(self, machines: dict[str, list[str]]):
        from hardway.classroom.model import ClassMachine

        self.machines = {s: [ClassMachine(m, s, "192.0.2.1") for m in ms] for s, ms in machines.items()}
        self.saved: dict = {}

    def students(self):
        return self.machines

    def load(self, what):
        return self.saved

    def save(self, what, data):
        self.saved = data


def test_the_report_orders_labs_by_course_and_skips_only_within_a_part(monkeypatch):
    from hardway.classroom import report

    # ann is in the node part's n3; bob at pod networking's 02 on one machine and n5 on the
    # other (the furthest in the course counts: 02, though "n5" > "02" as text).
    at = {"ann-1": "n3", "bob-1": "02", "bob-2": "n5"}
    monkeypatch.setattr(report, "where", lambda c, ms: {m: (lab, "ok") for m, lab in at.items()})
    monkeypatch.setattr(report, "_check", lambda lab, c, ms: {
        m: labs.NodeResult(node=m, passed=False, reason="not yet", hint=lab.hint) for m in ms})
    result = report.collect(FakeClass({"ann": ["ann-1"], "bob": ["bob-1", "bob-2"]}))
    ann, bob = result.students
    assert ann.current == "n3" and bob.current == "02"
    assert [ann.labs[i].status for i in ("n1", "n2", "n3", "n4", "01")] == \
        ["skipped", "skipped", "fail", "not reached", "not reached"]
    # An earlier part is not skipped: each part begins from the provisioned node.
    assert [bob.labs[i].status for i in ("n1", "n5", "01", "02", "03")] == \
        ["not reached", "not reached", "skipped", "fail", "not reached"]


def test_the_terminal_report_names_each_part_above_its_first_lab():
    from hardway import cli

    with cli.console.capture() as captured:
        cli.print_report(a_report())
    header = [line for line in captured.get().splitlines() if "node" in line]
    assert header and "pods" in header[0], captured.get()
