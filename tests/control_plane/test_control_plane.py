"""The control plane on real nodes: a two-node lab of its own with the control plane on
(`hardway up --count 2 --control-plane`: etcd, the API server, the controller manager and
the scheduler on node1, whose kubelet joins it; node2 stays a standalone node and plays a
classmate on the same network).

Proves: node1 registers and is Ready; a static pod appears as a mirror pod; `kubectl exec`
as the admin reaches into it (API server -> kubelet with the API server's kubelet client
certificate and RBAC); from node2 the kubelet's port 10250 answers, and refuses (401) an
unauthenticated caller and a client certificate of another CA on its pods, run and exec
endpoints while the API server's own client certificate is let in; node2's standalone
kubelet still listens on loopback only (a second converge and a check-mode run changing
nothing are molecule's: tests/test_molecule.py); four faults a student meets (etcd
stopped, the API server stopped, a serving certificate without 127.0.0.1, an expired one)
each show in lab c2's reason, and a stopped component is not started again by another's
restart.

Self-contained: it boots and takes down its own lab on its worker's test-lab settings
(tests/integration/conftest.py: HARDWAY_TEST_*, HARDWAY_TEST1_* or HARDWAY_TEST2_*), a lane
of its own in `make test` (tests/conftest.py); alone:
`pytest -n 0 tests/control_plane/test_control_plane.py`. Its time beside the rest of
`make test` on 2 cores is in docs/testing.md.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from hardway import labs
from tests.integration.conftest import TEST_ENV, TestLab, hardway, wait_for
from tests.integration.walk import check, node_result, walk

CP, CLASSMATE = "node1", "node2"
CONTROL_LABS = [lab.id for lab in labs.all_labs() if lab.part == "control"]
KUBELET_FILES = ("/etc/kubernetes/kubelet.yaml /etc/systemd/system/kubelet.service "
                 "/etc/kubernetes/kubelet.kubeconfig")
ENV = dict(TEST_ENV, HARDWAY_CONTROL_PLANE="1")
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.kubeconfig"
PKI = "/etc/kubernetes/pki"
STATIC_POD = "cp-hello"
STATIC_MANIFEST = f"""apiVersion: v1
kind: Pod
metadata:
  name: {STATIC_POD}
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: hello
      image: lab.local/busybox:1.35
      imagePullPolicy: IfNotPresent
      command: [sh, -c, "echo hello > /tmp/said && exec sleep 86400"]
"""


@pytest.fixture(scope="module")
def cp_lab(host_before) -> Iterator[TestLab]:
    hardway("nodes", "down", env=ENV, check=False)
    hardway("up", "--count", "2", "--control-plane", env=ENV, timeout=2400)
    lab = TestLab()
    yield lab
    hardway("nodes", "down", env=ENV, check=False)


@pytest.fixture(scope="module")
def provisioned_kubelet(cp_lab: TestLab) -> str:
    """The joined kubelet's files as site.yml wrote them, before any lab."""
    return cp_lab.ok(CP, f"sha256sum {KUBELET_FILES}")


@pytest.fixture(scope="module")
def mirror_pod(cp_lab: TestLab) -> str:
    """The static pod's mirror pod, once the API server has it and its container runs."""
    cp_lab.ok(CP, f"cat > /etc/kubernetes/manifests/{STATIC_POD}.yaml <<'EOF'\n{STATIC_MANIFEST}EOF")
    name = f"{STATIC_POD}-{CP}"

    def running():
        out = cp_lab.sh(CP, f"{KUBECTL} get pod {name} -o json")
        if out.returncode != 0:
            return False, out.stderr.strip()[-200:]
        pod = json.loads(out.stdout)
        return pod["status"].get("phase") == "Running", (pod["metadata"].get("annotations"),
                                                         pod["status"].get("phase"))

    wait_for(running, 120, f"the mirror pod {name} running", interval=2)
    return name


def classmate_curl(lab: TestLab, path: str, *extra: str, method: str = "GET") -> tuple[str, str]:
    """From node2: the HTTP status of a request to node1's kubelet, and the body."""
    address = lab.node(CP).address
    command = (f"curl --noproxy '*' -sk -m 5 -X {method} -o /tmp/body -w '%{{http_code}}' "
               f"{' '.join(extra)} 'https://{address}:10250{path}'; echo; cat /tmp/body")
    out = lab.sh(CLASSMATE, command)
    code, _, body = out.stdout.partition("\n")
    return code.strip(), body


def test_the_control_plane_node_registers_and_is_ready(cp_lab, provisioned_kubelet):
    def ready():
        out = cp_lab.sh(CP, f"{KUBECTL} get node {CP} -o json")
        if out.returncode != 0:
            return False, out.stderr.strip()[-200:]
        conditions = {c["type"]: c for c in json.loads(out.stdout)["status"]["conditions"]}
        ready = conditions.get("Ready", {})
        return ready.get("status") == "True", ready.get("message")

    wait_for(ready, 120, f"node {CP} Ready", interval=2)
    # It registered with its own certificate: system:node:<name> of group system:nodes.
    subject = cp_lab.ok(CP, f"openssl x509 -noout -subject -in {PKI}/kubelet.crt")
    assert f"CN = system:node:{CP}" in subject and "O = system:nodes" in subject, subject
    address = cp_lab.ok(CP, f"{KUBECTL} get node {CP} -o "
                            "jsonpath='{.status.addresses[?(@.type==\"InternalIP\")].address}'")
    assert address.strip() == cp_lab.node(CP).address


def test_a_static_pod_appears_as_a_mirror_pod(cp_lab, mirror_pod):
    annotations = json.loads(cp_lab.ok(CP, f"{KUBECTL} get pod {mirror_pod} -o json"))[
        "metadata"]["annotations"]
    assert "kubernetes.io/config.mirror" in annotations, annotations
    assert annotations.get("kubernetes.io/config.source") == "file", annotations


def test_the_admin_can_exec_into_a_pod_through_the_api_server(cp_lab, mirror_pod):
    out = cp_lab.ok(CP, f"{KUBECTL} exec {mirror_pod} -- cat /tmp/said")
    assert out.strip() == "hello"
    logs = cp_lab.sh(CP, f"{KUBECTL} logs {mirror_pod}")
    assert logs.returncode == 0, logs.stderr


def test_a_classmate_reaches_the_kubelet_but_cannot_use_it(cp_lab, mirror_pod):
    """From node2, on the same network: the port answers (the API server's client
    certificate gets in: the refusals below are the kubelet's, not the network's), and
    without a certificate of this control plane's CA every endpoint says 401."""
    lab = cp_lab
    # The API server's own kubelet client certificate, carried over to node2 for this test only.
    for suffix in ("crt", "key"):
        content = lab.ok(CP, f"cat {PKI}/apiserver-kubelet-client.{suffix}")
        lab.ok(CLASSMATE, f"umask 077; cat > /root/cp-client.{suffix} <<'EOF'\n{content}EOF")
    code, body = classmate_curl(lab, "/pods", "--cert /root/cp-client.crt --key /root/cp-client.key")
    assert code == "200" and mirror_pod.removesuffix(f"-{CP}") in body, (code, body[:300])

    # The kubelet's run endpoint takes the command in the query; exec wants an upgrade after.
    run = f"/run/default/{mirror_pod}/hello?cmd=id"
    exec_ = f"/exec/default/{mirror_pod}/hello?command=id&stdout=true"
    code, body = classmate_curl(lab, run, method="POST")
    assert code == "401", f"POST {run} without a certificate: {code} {body[:200]}"
    code, body = classmate_curl(lab, exec_, method="POST")
    assert code == "401", f"POST {exec_} without a certificate: {code} {body[:200]}"
    code, body = classmate_curl(lab, "/pods")
    assert code == "401", f"GET /pods without a certificate: {code} {body[:200]}"

    # A certificate of another CA, naming itself admin in system:masters: still nobody here.
    lab.ok(CLASSMATE, "cd /root && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                      "-nodes -keyout other-ca.key -out other-ca.crt -days 1 -subj '/CN=other CA' "
                      "2>/dev/null && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                      "-keyout other.key -out other.csr -subj '/O=system:masters/CN=admin' 2>/dev/null "
                      "&& openssl x509 -req -in other.csr -CA other-ca.crt -CAkey other-ca.key "
                      "-CAcreateserial -days 1 -out other.crt 2>/dev/null")
    cert = "--cert /root/other.crt --key /root/other.key"
    for path, method in ((run, "POST"), (exec_, "POST"), ("/pods", "GET")):
        code, body = classmate_curl(lab, path, cert, method=method)
        assert code == "401", f"{method} {path} with another CA's certificate: {code} {body[:200]}"
    # The run endpoint did run for the right certificate: the refusal above is about who asks.
    code, body = classmate_curl(lab, run, "--cert /root/cp-client.crt --key /root/cp-client.key",
                                method="POST")
    assert code == "200" and "uid=0" in body, (code, body[:200])
    lab.ok(CLASSMATE, "rm -f /root/cp-client.* /root/other*")


def test_a_node_without_the_control_plane_keeps_its_kubelet_on_loopback(cp_lab):
    listeners = cp_lab.ok(CLASSMATE, "ss -Htln 'sport = :10250'").split()
    addresses = [word for word in listeners if word.endswith(":10250")]
    assert addresses and all(a.startswith(("127.", "[::1]")) for a in addresses), listeners
    config = cp_lab.ok(CLASSMATE, "cat /etc/kubernetes/kubelet.yaml")
    assert re.search(r"mode: AlwaysAllow", config) and "kubeconfig" not in cp_lab.ok(
        CLASSMATE, "systemctl cat kubelet")


@pytest.mark.parametrize("lab_id", CONTROL_LABS)
def test_each_lab_fails_its_start_and_a_mistake_and_passes_a_variant_and_the_solution(cp_lab, lab_id):
    walk(cp_lab, lab_id)


def serving_certificate(addresses: list[str], valid_days: tuple[int, int]) -> tuple[str, str]:
    """A serving certificate (PEM) for the IP `addresses`, signed by the test lab's own CA
    and valid from valid_days[0] to valid_days[1] days from now, and its new key (PEM)."""
    ca_dir = Path(TEST_ENV["HARDWAY_INVENTORY"]) / "pki" / CP
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey), type(ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=valid_days[0]))
            .not_valid_after(now + datetime.timedelta(days=valid_days[1]))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


SERVING = f"{PKI}/kube-apiserver"


def swap_serving_certificate(addresses: list[str], valid_days: tuple[int, int]) -> str:
    cert, key = serving_certificate(addresses, valid_days)
    return (f"cp -p {SERVING}.crt {SERVING}.crt.good && cp -p {SERVING}.key {SERVING}.key.good && "
            f"printf '%s' '{cert}' > {SERVING}.crt && printf '%s' '{key}' > {SERVING}.key && "
            "systemctl restart kube-apiserver")


RESTORE_SERVING = (f"mv {SERVING}.crt.good {SERVING}.crt && mv {SERVING}.key.good {SERVING}.key && "
                   "systemctl restart kube-apiserver")
# Undone as a student would: `hardway lab solve c2` resets first, and the reset starts what
# the student stopped before it deletes anything through the API server.
SOLVE_AGAIN = "hardway lab solve c2"
# A fault a student meets on lab c2's solved node: (how to cause it, how to undo it, what
# the check's reason must say: the observation or what it points at).
FAULTS = {
    "etcd stopped": ("systemctl stop etcd", SOLVE_AGAIN, "cannot reach etcd"),
    # It takes longer to stop than a lab node's 10 s: killed, systemd calls it failed.
    "the API server stopped": ("systemctl stop kube-apiserver", SOLVE_AGAIN,
                               "journalctl -u kube-apiserver"),
    # Made for the node's own address only: the admin's kubeconfig asks for 127.0.0.1.
    "a serving certificate without 127.0.0.1": (
        "node address", RESTORE_SERVING, "does not name the address asked for"),
    "an expired serving certificate": ("expired", RESTORE_SERVING, "openssl x509 -noout -dates"),
}
# Long enough for the controller manager to lose the API server, exit and be restarted
# (its unit once pulled a stopped API server back in 17 s after the stop).
STAYS_STOPPED = 30


@pytest.fixture(scope="module")
def c2_solved(cp_lab: TestLab) -> None:
    """Lab c2 solved, once for the faults: each fault's undo and its passing check leave it so."""
    hardway("lab", "solve", "c2", "--limit", CP)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_in_the_control_plane_shows_in_the_checks_reason(cp_lab, c2_solved, fault):
    cause, undo, words = FAULTS[fault]
    if cause == "node address":
        cause = swap_serving_certificate([cp_lab.node(CP).address], (-1, 30))
    elif cause == "expired":
        cause = swap_serving_certificate([cp_lab.node(CP).address, "127.0.0.1"], (-30, -1))

    def reason() -> tuple[bool, str]:
        result = node_result(check("c2", settle=False))
        return words in result["reason"], result["reason"]

    try:
        began = time.monotonic()
        cp_lab.ok(CP, cause)
        wait_for(reason, 60, f"lab c2's check to name the fault ({words})", interval=2)
        if cause.startswith("systemctl stop "):
            time.sleep(max(0.0, STAYS_STOPPED - (time.monotonic() - began)))
            unit = cause.removeprefix("systemctl stop ")
            state = cp_lab.sh(CP, f"systemctl is-active {unit}").stdout.strip()
            assert state != "active", f"{unit} was started again by itself after the student stopped it"
    finally:
        if undo == SOLVE_AGAIN:
            hardway("lab", "solve", "c2", "--limit", CP)
        else:
            cp_lab.ok(CP, undo)

    def passes() -> tuple[bool, str]:
        result = node_result(check("c2", settle=False))
        return result["passed"], result["reason"]

    wait_for(passes, 90, f"lab c2's check to pass once {fault} is undone", interval=2)


def test_a_reset_gives_back_the_provisioned_control_plane_node(cp_lab, provisioned_kubelet):
    hardway("lab", "reset", "--limit", CP)
    assert cp_lab.ok(CP, f"sha256sum {KUBELET_FILES}") == provisioned_kubelet
    assert cp_lab.ok(CP, "systemctl is-active etcd kube-apiserver kube-scheduler kubelet").split() == \
        ["active"] * 4
    keys = cp_lab.ok(CP, "ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=/etc/kubernetes/pki/ca.crt "
                         "ETCDCTL_CERT=/etc/kubernetes/pki/apiserver-etcd-client.crt "
                         "ETCDCTL_KEY=/etc/kubernetes/pki/apiserver-etcd-client.key "
                         "etcdctl get /hardway --prefix --keys-only")
    assert keys.strip() == ""

    def no_pods():
        pods = cp_lab.ok(CP, f"{KUBECTL} get pods --all-namespaces -o name").strip()
        return pods == "", pods

    wait_for(no_pods, 60, "no pods left in the API after the reset", interval=2)
