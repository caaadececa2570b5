"""A class of three students with two machines each, on real local nodes (issue: classroom).

The machines are made like cloud VMs: the roster's user `debian` logs in and uses sudo,
root's SSH login is off; alice-1, alice-2 and bob-1 run Debian 12, the rest Debian 13.
carol's second machine does not exist when the class is first provisioned: `class up`
must provision the other five, report the sixth, and later retry only that one. The
class has its own lab (bridge hwcls0, 10.75.0.0/24), taken down at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from hardway import labs
from tests.conftest import play_recap
from tests.integration.classroom import LocalClass

STATE = Path("/var/lib/hardway-class-test")
ENV = {"HARDWAY_BRIDGE": "hwcls0", "HARDWAY_SUBNET": "10.75.0.0/24", "HARDWAY_STATE": str(STATE),
       "HARDWAY_INVENTORY": str(STATE / "inventory"), "HARDWAY_MIRROR_PORT": "8075"}
LOCAL_NODES = """\
ansible_python_interpreter: /usr/bin/python3
node_prereqs_update_cache: false
node_prereqs_disable_swap: false
kubelet_protect_kernel_defaults: true
"""
DEBIAN_13 = ("bob-2", "carol-1", "carol-2")
ADDRESS = {"alice-1": "10.75.0.11", "alice-2": "10.75.0.12", "bob-1": "10.75.0.13",
           "bob-2": "10.75.0.14", "carol-1": "10.75.0.15", "carol-2": "10.75.0.16"}


def table(stdout: str) -> dict[str, list[str]]:
    """The rows of a printed table, by their first cell."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in stdout.splitlines()
            if line.startswith("│")]
    return {row[0]: row for row in rows if row and row[0]}


def write_roster(folder: Path, rows: str) -> Path:
    path = folder / "roster.csv"
    path.write_text("student,machine1,machine2,user,port,key\n" + rows)
    return path


@pytest.fixture(scope="module")
def classroom(host_before):
    the_class = LocalClass(Path(tempfile.mkdtemp(prefix="hardway-class-")), ENV, ADDRESS)
    the_class.hardway("nodes", "down", check=False)
    shutil.rmtree(STATE / "classes", ignore_errors=True)
    # Five machines exist; carol-2 (10.75.0.16) does not, yet.
    the_class.hardway("up", "--count", "3", "--no-site", "--login", "sudo")
    the_class.hardway("nodes", "up", "--count", "5", "--os", "debian13", "--login", "sudo")
    the_class.init(["alice", "bob", "carol"], LOCAL_NODES)
    (STATE / "mirror-serve.log").write_text("")
    shutil.rmtree("/var/cache/hardway/class-downloads", ignore_errors=True)
    the_class.first_up = the_class.hardway("class", "up", "k8s", check=False)
    yield the_class
    the_class.down()


@pytest.mark.parametrize(("rows", "options", "message"), [
    ("ada,10.9.0.1,,,,\nbob,10.9.0.1,,,,\n", [],
     "row 3: machine 10.9.0.1 (port 22) is already on row 2: every student needs their own machine"),
    ("ada,,,,,\n", [], "row 2: student ada has no machine1"),
    ("ada,10.9.0.1,,,,\n", ["--pod-range", "10.200.0.0/33"], "--pod-range '10.200.0.0/33' is not an IPv4"),
    ("ada,10.9.0.1,,,,\nbob,10.9.0.2,,,,\ncy,10.9.0.3,,,,\n", ["--pod-range", "10.200.0.0/25",
                                                              "--pod-prefix", "26"],
     "row 4: no pod network left for cy-1: 10.200.0.0/25 holds 2 /26 networks and the class needs 3"),
])
def test_bad_rosters_are_refused_with_the_row_and_the_fix(tmp_path, rows, options, message):
    the_class = LocalClass(tmp_path / "classes", ENV, ADDRESS)
    result = the_class.hardway("class", "init", str(write_roster(tmp_path, rows)), "--name", "bad",
                               *options, check=False)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "classes").exists()


def test_class_up_provisions_five_machines_and_reports_the_unreachable_sixth(classroom):
    result = classroom.first_up
    assert result.returncode == 1, result.stdout + result.stderr
    rows = table(result.stdout)
    assert {machine: row[2] for machine, row in rows.items()} == {
        "alice-1": "ready", "alice-2": "ready", "bob-1": "ready", "bob-2": "ready",
        "carol-1": "ready", "carol-2": "unreachable"}
    assert "carol-2" in result.stderr and "--retry-failed" in result.stderr
    # Every stage was reported as it finished.
    assert "stage kubelet: 5 machine(s) through" in result.stderr
    assert "stage preflight: 5 machine(s) through, 1 stopped" in result.stderr
    state = json.loads((STATE / "classes/k8s/up.json").read_text())
    assert "No route to host" in state["carol-2"]["reason"]
    # Each artifact came from the mirror once, for five machines.
    requests = Counter(re.findall(r'"GET (\S+) HTTP', (STATE / "mirror-serve.log").read_text()))
    artifacts = {path: n for path, n in requests.items() if "index.yml" not in path}
    assert len(artifacts) == 8, artifacts  # kubelet, containerd, runc, CNI, crictl, 3 images
    assert set(artifacts.values()) == {1}, artifacts


def test_the_machines_are_debian_12_and_13_and_refuse_root_logins(classroom):
    for machine in ("alice-1", "bob-2"):
        release = classroom.ssh(machine, ". /etc/os-release && echo $VERSION_ID").stdout.strip()
        assert release == ("13" if machine in DEBIAN_13 else "12"), (machine, release)
        refused = classroom.ssh(machine, "true", user="root")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr


def test_a_students_machine_cannot_reach_another_students_kubelet_or_containerd(classroom):
    listening = classroom.ssh("bob-1", "ss -ltnH").stdout.split("\n")
    local = [line.split()[3] for line in listening if line.strip()]
    # Only sshd listens beyond loopback (no lab is under way yet).
    assert all(a.startswith(("127.0.0.1:", "[::1]:")) or a.endswith(":22") for a in local), local
    ports = [a.rsplit(":", 1)[1] for a in local if a.startswith("127.0.0.1:")]
    assert {"10248", "10250"} <= set(ports)  # the kubelet; the rest is containerd's stream server
    probe = "; ".join(f"curl -sk -m 3 -o /dev/null https://{ADDRESS['bob-1']}:{p}/; echo {p}=$?"
                      for p in ports)
    answers = dict(line.split("=") for line in classroom.ssh("alice-1", probe).stdout.split())
    assert answers == dict.fromkeys(ports, "7"), answers  # 7: connection refused


@pytest.fixture(scope="module")
def report(classroom):
    inventory = str(classroom.inventory)
    classroom.hardway("lab", "solve", "03", "-i", inventory, "--limit", "alice-1")
    classroom.hardway("lab", "start", "02", "-i", inventory, "--limit", "bob-1")
    page = classroom.folder / "report.html"
    data = classroom.report("--html", str(page))
    table = classroom.hardway("class", "report", "k8s")
    return data, table.stdout, page


def test_the_report_shows_each_student_where_they_are(report):
    data, _, _ = report
    students = {s["student"]: s for s in data["students"]}
    # Every lab of every part, in the course's order (labs/parts.yml), whatever the course holds.
    assert [lab["id"] for lab in data["labs"]] == [lab.id for lab in labs.all_labs()]
    assert [part["name"] for part in data["parts"]] == [part.name for part in labs.parts()]
    assert {"n1", "01", "10"} <= {lab.id for lab in labs.all_labs()}
    alice, bob, carol = students["alice"], students["bob"], students["carol"]
    assert alice["current"] == "03"
    # Each part begins from the provisioned node: a lab of another part is not reached, not
    # skipped, whichever parts come before or after pod networking.
    assert {k: v["status"] for k, v in alice["labs"].items()} == {
        **{lab.id: "not reached" for lab in labs.all_labs()},
        "01": "skipped", "02": "skipped", "03": "pass"}
    assert bob["current"] == "02" and bob["labs"]["02"]["status"] == "fail"
    assert "static-nginx-2" in bob["labs"]["02"]["reason"] and bob["labs"]["02"]["machine"] == "bob-1"
    assert "/etc/kubernetes/manifests" in bob["labs"]["02"]["hint"]
    assert bob["labs"]["03"]["status"] == "not reached"
    assert carol["current"] is None
    assert {v["status"] for v in carol["labs"].values()} == {"not reached"}
    assert carol["machines"]["carol-1"] == "ok" and "No route to host" in carol["machines"]["carol-2"]


def test_the_terminal_report_has_the_table_and_each_failure_with_its_hint(report):
    _, printed, _ = report
    rows = {name.split()[0]: row for name, row in table(printed).items()}
    # student, at, then one column per lab in course order (the node part's first)
    cells = {name: dict(zip(["at", *(lab.id for lab in labs.all_labs())], row[1:], strict=True))
             for name, row in rows.items() if name in ("alice", "bob")}
    assert [cells["alice"][k] for k in ("at", "01", "02", "03", "04", "n1")] == \
        ["03", "skip", "skip", "pass", "·", "·"]
    assert [cells["bob"][k] for k in ("at", "01", "02", "03")] == ["02", "skip", "FAIL", "·"]
    assert rows["carol"][0] == "carol (1 down)"
    assert "carol: carol-2 unreachable: ssh: connect to host 10.75.0.16 port 22: No route to host" in printed
    assert set(rows["carol"][2:]) == {"·"}
    assert "bob lab 02 fail on bob-1: no pod static-nginx-2" in printed
    assert "hint: Copy /root/lab/02/static-nginx-2.yaml" in printed


def test_the_report_page_in_chromium_shows_the_table_sorts_and_explains(report, tmp_path):
    _, _, page = report
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,700",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        browser.get(page.as_uri())
        shot = tmp_path / "report.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        assert browser.find_element(By.TAG_NAME, "h1").text == "k8s: lab progress"

        def students() -> list[str]:
            return [r.get_attribute("data-student")
                    for r in browser.find_elements(By.CSS_SELECTOR, "#report tbody tr")]

        assert students() == ["alice", "bob", "carol"]
        fail = browser.find_element(By.CSS_SELECTOR, 'tr[data-student="bob"] td[data-lab="02"]')
        assert fail.get_attribute("class") == "fail" and fail.text == "✘ fail"
        assert "static-nginx-2" in fail.get_attribute("title")
        assert "Hint: Copy /root/lab/02" in fail.get_attribute("title")
        passed = browser.find_element(By.CSS_SELECTOR, 'tr[data-student="alice"] td[data-lab="03"]')
        assert passed.get_attribute("class") == "pass"
        detail = browser.find_element(By.ID, "detail")
        assert not detail.is_displayed()
        fail.click()
        assert detail.is_displayed()
        assert "bob, lab 02" in detail.text and "static-nginx-2" in detail.text
        assert "Copy /root/lab/02/static-nginx-2.yaml" in detail.text
        headers = {h.text: h for h in browser.find_elements(By.CSS_SELECTOR, "#report thead th")}
        headers["At lab"].click()  # ascending: carol (none), bob (02), alice (03)
        assert students() == ["carol", "bob", "alice"]
        headers["At lab"].click()
        assert students() == ["alice", "bob", "carol"]
        headers["Student"].click()
        headers["Student"].click()
        assert students() == ["carol", "bob", "alice"]
        assert headers["Student"].get_attribute("aria-sort") == "descending"
    finally:
        browser.quit()


def test_retry_failed_provisions_only_the_machine_that_was_missing(classroom):
    classroom.hardway("nodes", "up", "--count", "6", "--os", "debian13", "--login", "sudo")
    result = classroom.hardway("class", "up", "k8s", "--retry-failed")
    assert {row[2] for row in table(result.stdout).values()} == {"ready"}, result.stdout
    assert len(table(result.stdout)) == 6
    log = sorted((STATE / "classes/k8s").glob("up-*.log"))[-1].read_text()
    assert set(play_recap(log)) == {"carol-2"}


def test_a_second_class_up_changes_nothing_on_debian_12_or_13(classroom):
    classroom.hardway("class", "up", "k8s")
    log = sorted((STATE / "classes/k8s").glob("up-*.log"))[-1].read_text()
    counts = play_recap(log)
    assert set(counts) == set(ADDRESS)
    assert {m: c["changed"] for m, c in counts.items()} == dict.fromkeys(ADDRESS, 0), counts


def test_lab_08_pairs_each_students_own_machines(classroom):
    classroom.hardway("lab", "solve", "08", "-i", str(classroom.inventory),
                      "--limit", "carol-1,carol-2")
    routes = classroom.ssh("carol-1", "ip -4 route").stdout
    assert re.search(r"10\.200\.5\.0/24 via 10\.75\.0\.16", routes), routes  # carol-2's pods
    assert "10.200.0.0/24" not in routes  # alice-1's pods: not carol's partner
    data = classroom.report()
    carol = next(s for s in data["students"] if s["student"] == "carol")
    assert carol["current"] == "08" and carol["labs"]["08"]["status"] == "pass", carol["labs"]["08"]
    assert carol["labs"]["07"]["status"] == "skipped"
    # alice's pass is kept although nothing changed on her machines since.
    alice = next(s for s in data["students"] if s["student"] == "alice")
    assert alice["labs"]["03"]["status"] == "pass"
