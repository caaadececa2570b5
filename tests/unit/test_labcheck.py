"""labs/labcheck.py's reading of a node, from what a node really prints: a pod being
replaced is "still starting", never judged by its old copy."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from hardway.labs import LABS
from tests.conftest import module_from_file

sys.path.insert(0, str(LABS))
from labcheck import STARTING, Node, explain  # noqa: E402

NOW = 1_800_000_000
NGINX = "/etc/kubernetes/manifests/static-nginx.yaml"
MANIFEST = "apiVersion: v1\nkind: Pod\nmetadata: {name: static-nginx}\n"


def sandbox(uid: str, created: int) -> dict:
    return {"id": f"sb-{uid}", "metadata": {"name": "static-nginx-node1", "uid": uid},
            "state": "SANDBOX_READY", "createdAt": str(created * 10**9)}


def container(uid: str, name: str, state: str, attempt: int = 0) -> dict:
    return {"id": f"c-{uid}-{attempt}", "podSandboxId": f"sb-{uid}", "createdAt": str(NOW * 10**9),
            "metadata": {"name": name, "attempt": attempt}, "state": state}


class FakeHost:
    """Answers the snapshot command as a node does; anything else from `extra`."""

    def __init__(self, pods, containers, wanted: list[str] | None, changed: int,
                 waiting: tuple[str, ...] = (), begun_at: int = NOW - 3600,
                 kubelet_age: int | None = 3600):
        """wanted: the uids the kubelet wants; waiting: those it has not begun yet; the
        others it began at begun_at; kubelet_age: seconds since the kubelet started."""
        begun = {"phase": "Pending", "startTime": datetime.fromtimestamp(begun_at, UTC).isoformat()}
        kubelet = json.dumps({"items": [
            {"metadata": {"uid": u, "name": "static-nginx-node1"},
             "status": {"phase": "Pending"} if u in waiting else begun} for u in wanted]}) \
            if wanted is not None else ""
        self.parts = [
            "node1\n", json.dumps({"items": pods}), json.dumps({"containers": containers}),
            f"{NOW}\n", f"{changed} {NGINX}\n", kubelet,
            f"{kubelet_age:>7}\n" if kubelet_age is not None else ""]

    def run(self, command: str):
        if command.startswith("set -e; hostname"):
            cut = command.split("echo ", 1)[1].split(";", 1)[0]  # the separator asked for
            return SimpleNamespace(rc=0, stdout=cut.join(self.parts), stderr="")
        if command.startswith("for f in"):
            return SimpleNamespace(rc=0, stdout=f"@@{NGINX}\n{MANIFEST}", stderr="")
        raise AssertionError(f"unexpected command {command}")


def test_an_old_copy_still_stopping_is_starting_not_a_crash():
    # The student replaced a crashing nginx 40 s ago; the kubelet wants the new pod (uid
    # new) and waits for the old copy (uid old) to stop before making it.
    host = FakeHost([sandbox("old", NOW - 60)], [container("old", "nginx", "CONTAINER_EXITED", 1)],
                    wanted=["new"], changed=NOW - 40)
    with pytest.raises(AssertionError, match=f"^{STARTING}the kubelet is replacing pod static-nginx"):
        Node(host).require_running("static-nginx")


def test_the_new_copy_is_judged_even_while_the_old_one_stops():
    pods = [sandbox("new", NOW - 5), sandbox("old", NOW - 60)]
    containers = [container("new", "web", "CONTAINER_RUNNING"),
                  container("old", "nginx", "CONTAINER_EXITED", 1)]
    node = Node(FakeHost(pods, containers, wanted=["new"], changed=NOW - 40))
    assert node.require_running("static-nginx")["metadata"]["name"] == "web"
    assert node.pod_names() == ["static-nginx"]


def test_a_pod_the_kubelet_wants_that_crashes_fails_with_what_was_seen():
    host = FakeHost([sandbox("only", NOW - 60)], [container("only", "nginx", "CONTAINER_EXITED", 3)],
                    wanted=["only"], changed=NOW - 60)
    with pytest.raises(AssertionError, match="nginx exited \\(attempt 3\\).*is not running"):
        Node(host).require_running("static-nginx")


def test_without_the_kubelet_every_ready_sandbox_counts():
    host = FakeHost([sandbox("old", NOW - 60)], [container("old", "nginx", "CONTAINER_EXITED", 1)],
                    wanted=None, changed=NOW - 60)
    with pytest.raises(AssertionError, match="is not running"):
        Node(host).require_running("static-nginx")


def test_a_pod_the_kubelet_has_not_begun_is_starting_however_long_the_old_copy_took():
    # The old copy stopped after its 30 s grace period and is gone; the kubelet begins the
    # new one only on its next pass: it lists it as Pending with no start time.
    host = FakeHost([], [], wanted=["new"], changed=NOW - 45, waiting=("new",))
    with pytest.raises(AssertionError, match=f"^{STARTING}the kubelet is replacing"):
        Node(host).require_running("static-nginx")
    begun = FakeHost([], [], wanted=["new"], changed=NOW - 45)
    with pytest.raises(AssertionError, match="^the kubelet has made no pod static-nginx from "):
        Node(begun).require_running("static-nginx")


def test_a_pod_begun_moments_ago_is_starting_while_its_sandbox_is_made():
    # Measured on a node: the old copy stopped 2 s after the manifest changed, the kubelet
    # began the new one 12 s after that, and made its sandbox in the seconds that followed.
    host = FakeHost([], [], wanted=["new"], changed=NOW - 20, begun_at=NOW - 3)
    with pytest.raises(AssertionError, match=f"^{STARTING}the kubelet has made no pod static-nginx"):
        Node(host).require_running("static-nginx")


def test_a_separator_in_a_students_pod_does_not_confuse_the_snapshot():
    pod = dict(sandbox("only", NOW - 60), annotations={"note": "@@ and @@ again"})
    host = FakeHost([pod], [container("only", "web", "CONTAINER_RUNNING")], wanted=["only"],
                    changed=NOW - 60)
    assert Node(host).require_running("static-nginx")["metadata"]["name"] == "web"


# What the clients said on a node (etcdctl 3.6.8, kubectl 1.36.4), and what each reason adds.
ETCDCTL_WITHOUT_OUR_CA = (
    '{"level":"warn","msg":"retrying of unary invoker failed","error":"rpc error: code = '
    'DeadlineExceeded desc = latest balancer error: connection error: desc = \\"transport: '
    'authentication handshake failed: tls: failed to verify certificate: x509: certificate '
    'signed by unknown authority\\""} Error: context deadline exceeded')
KUBECTL_EXPIRED = ("Unable to connect to the server: tls: failed to verify certificate: x509: "
                   "certificate has expired or is not yet valid: current time "
                   "2027-12-04T00:00:00Z is after 2027-12-03T00:15:00Z")


@pytest.mark.parametrize(("error", "words"), [
    (ETCDCTL_WITHOUT_OUR_CA, "not signed by the CA given"),
    (KUBECTL_EXPIRED, "compare `openssl x509 -noout -dates"),
    ("The connection to the server 127.0.0.1:6443 was refused - did you specify the right host "
     "or port?", "is the service running"),
    ("Unable to connect to the server: tls: failed to verify certificate: x509: certificate is "
     "valid for 10.81.0.11, 127.0.0.1, not 10.81.0.99", "does not name the address"),
    ("error: You must be logged in to the server (Unauthorized)", "not signed by this control"),
    # etcd stopped, asked with lab c2's long timeout and with the others' 2 s.
    ("/readyz names failing checks: etcd, etcd-readiness", "cannot reach etcd"),
    ("Unable to connect to the server: net/http: request canceled (Client.Timeout exceeded while "
     "awaiting headers)", "can it reach etcd"),
])
def test_a_control_plane_client_error_says_what_it_points_at(error, words):
    reason = explain(error)
    assert words in reason
    # The client's own words come first, whole (or their last 300 characters).
    assert reason.startswith(" ".join(error.split())[-300:])


def test_an_error_nobody_explained_is_passed_on_as_it_is():
    assert explain("  something\nelse  ") == "something else"


@pytest.mark.parametrize(("made", "starting"), [(20, True), (120, False)])
def test_n5_calls_a_container_made_but_not_started_starting_for_a_while(made, starting):
    # Seen on a busy node: the sandbox ready and its container "created" 20 s after the
    # manifest changed. Two minutes on, it is a failure.
    check = module_from_file("check_n5", LABS / "n5-kubelet-by-hand" / "check.py")
    pods = [sandbox("only", NOW - made)]
    made_container = dict(container("only", "hello", "CONTAINER_CREATED"),
                          createdAt=str((NOW - made) * 10**9))
    node = Node(FakeHost(pods, [made_container], wanted=None, changed=NOW - made))
    with pytest.raises(AssertionError) as failure:
        check.test_a_static_pod_of_yours_runs(node)
    assert str(failure.value).startswith(STARTING) is starting, failure.value
    if not starting:
        assert "containers: hello created" in str(failure.value)


@pytest.mark.parametrize(("age", "starting"), [(25, True), (90, False), (None, False)])
def test_n5_calls_a_kubelet_just_started_without_pods_starting_for_a_while(age, starting):
    # Seen beside two other lanes of nodes: `lab solve n5` restarted the kubelet, its
    # manifest written 20 s before; no pod yet. Ninety seconds on (or with no kubelet), a failure.
    check = module_from_file("check_n5", LABS / "n5-kubelet-by-hand" / "check.py")
    node = Node(FakeHost([], [], wanted=[], changed=NOW - 20, kubelet_age=age))
    with pytest.raises(AssertionError) as failure:
        check.test_a_static_pod_of_yours_runs(node)
    assert str(failure.value).startswith(STARTING) is starting, failure.value
    if not starting:
        assert "no static pod runs (pods: none; containers: none" in str(failure.value)


def test_a_container_made_but_not_started_is_starting_for_a_while_in_every_lab():
    made = dict(container("only", "nginx", "CONTAINER_CREATED"), createdAt=str((NOW - 20) * 10**9))
    host = FakeHost([sandbox("only", NOW - 60)], [made], wanted=["only"], changed=NOW - 60)
    with pytest.raises(AssertionError, match=f"^{STARTING}pod static-nginx: sandbox ready"):
        Node(host).require_running("static-nginx")
    stuck = dict(made, createdAt=str((NOW - 120) * 10**9))
    host = FakeHost([sandbox("only", NOW - 180)], [stuck], wanted=["only"], changed=NOW - 180)
    with pytest.raises(AssertionError, match="nginx created .*is not running"):
        Node(host).require_running("static-nginx")
