"""Every lab on real nodes, as a student meets it: on ONE node (the README's default), each
lab starts, its check fails, a plausible mistake fails too, the solution (or the
student's own correct variant) passes; lab 08 on two nodes. Reset keeps what the student
wrote, moved aside."""

from __future__ import annotations

import json
import re

import pytest

from hardway import labs
from tests.integration.conftest import hardway, wait_for

ONE = "node1"
# Pod networking first, so lab 01 still begins on a freshly provisioned node; the node
# part follows, and a test of its own then starts lab 01 from the node part's end.
SINGLE = [lab.id for lab in sorted(labs.all_labs(), key=lambda lab: lab.part != "pods")
          if lab.nodes == 1]


def manifest(name: str, body: str) -> str:
    """A shell line writing a student's own manifest (no labels of ours)."""
    return f"cat > /etc/kubernetes/manifests/{name} <<'EOF'\n{body}\nEOF"


NGINX, BUSYBOX = "lab.local/nginx:1.22", "lab.local/busybox:1.35"
DECOY_ON_80 = manifest("decoy.yml", f"""apiVersion: v1
kind: Pod
metadata: {{name: decoy}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
    - name: web
      image: {BUSYBOX}
      imagePullPolicy: IfNotPresent
      command:
        - sh
        - -c
        - mkdir -p /w && echo Welcome to nginx > /w/index.html && exec httpd -f -p 80 -h /w""")
CRASHING_NGINX = ("sed 's/imagePullPolicy: IfNotPresent/imagePullPolicy: IfNotPresent\\n      "
                  "command: [nginx, -g, \"daemon off; bad directive;\"]/' /root/lab/01/static-nginx.yaml "
                  "> /etc/kubernetes/manifests/static-nginx.yaml")
OWN_NGINX = manifest("web.yml", f"""apiVersion: v1
kind: Pod
metadata:
  name: static-nginx
spec:
  hostNetwork: true
  containers:
  - name: web
    image: {NGINX}
    imagePullPolicy: IfNotPresent""")

# lab -> (what the student got wrong, shell on the node, words the check's reason must hold)
MISTAKES = {
    "01": ("a crash-looping nginx beside another server on port 80",
           f"{DECOY_ON_80}\n{CRASHING_NGINX}", "static-nginx"),
    "02": ("the second nginx without hostNetwork",
           "sed 's/hostNetwork: true/hostNetwork: false/' /root/lab/02/static-nginx-2.yaml "
           "> /etc/kubernetes/manifests/static-nginx-2.yaml", "static-nginx-2"),
    "03": ("only one manifest replaced",
           "cp /root/lab/03/static-nginx.yaml /etc/kubernetes/manifests/", "hostNetwork: true"),
    "04": ("the bridge config moved in with mv",
           "cp /root/lab/04/10-bridge.conf /root/ && mv /root/10-bridge.conf /etc/cni/net.d/",
           "mv"),
    "05": ("a firewall rule dropping pod traffic to port 80",
           "cp /root/lab/05/*.yaml /etc/kubernetes/manifests/ && "
           "iptables -I FORWARD -p tcp --dport 80 -j DROP", "did not answer"),
    "06": ("both manifests copied at once (web-hostport-2 first)",
           "rm /etc/cni/net.d/10-bridge.conf && cp /root/lab/06/10-bridge.conflist /etc/cni/net.d/ && "
           "cp /root/lab/06/web-hostport-2.yaml /etc/kubernetes/manifests/ && sleep 3 && "
           "cp /root/lab/06/web-hostport.yaml /etc/kubernetes/manifests/", "web-hostport-2"),
    "07": ("a pod without the second nginx",
           "sed '/- name: nginx-again/,$d' /root/lab/07/web-sidecar.yaml "
           "> /etc/kubernetes/manifests/web-sidecar.yaml", "nginx-again"),
    "09": ("NET_ADMIN without the host network",
           "cd /root/lab/09 && cp net-plain.yaml net-admin.yaml host-pid.yaml node-shell.yaml "
           "/etc/kubernetes/manifests/ && sed '/hostNetwork: true/d' host-net-admin.yaml "
           "> /etc/kubernetes/manifests/host-net-admin.yaml", "hostNetwork"),
    "10": ("the service without the route for its network",
           "/root/lab-10-service.sh 2>/dev/null; ip route del 10.32.0.0/24 dev cnio0", "route"),
}
# The node part's mistakes (labs/n*): each what a student plausibly does.
N1_BUNDLE = """cd /root/lab/n1 && mkdir -p image bundle/rootfs && tar -xf busybox.tar -C image
layers=$(cd image && python3 -c 'import json; print(*json.load(open("manifest.json"))[0]["Layers"])')
for layer in $layers; do
  tar -xzf image/$layer -C bundle/rootfs
done
cd bundle && runc spec"""


def runc_config(args: str, drop_network: bool = False) -> str:
    """A shell line editing config.json in the current folder as a student would."""
    drop = ('c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] '
            'if n["type"] != "network"]\n') if drop_network else ""
    return ("python3 - <<'EOF'\nimport json\nc = json.load(open('config.json'))\n"
            f"c['process']['terminal'] = False\nc['process']['args'] = {args}\n{drop}"
            "json.dump(c, open('config.json', 'w'))\nEOF")


CNI_HAND = ("export CNI_PATH=/opt/cni/bin CNI_IFNAME=eth0; ip netns add three && CNI_COMMAND=ADD "
            "CNI_CONTAINERID=three CNI_NETNS=/var/run/netns/three /opt/cni/bin/bridge "
            "< /root/lab/n3/hand-net.conf >/dev/null")
KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
fileCheckFrequency: 5s
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: systemd
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: true
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow"""
KUBELET_UNIT = """[Unit]
After=containerd.service
[Service]
ExecStart=/usr/local/bin/kubelet --config=/etc/kubernetes/kubelet.yaml
Restart=always
[Install]
WantedBy=multi-user.target"""
HEALTHY = "for i in $(seq 60); do curl -s localhost:10248/healthz | grep -q ok && break; sleep 1; done"
MISTAKES.update({
    "n1": ("a container without a network namespace of its own",
           N1_BUNDLE + "\n" + runc_config("['sleep', '3600']", drop_network=True)
           + "\nrunc run -d box </dev/null >/dev/null 2>&1", "network"),
    "n2": ("a namespace without its default route", "ip -n blue route del default", "default route"),
    "n3": ("a namespace deleted without DEL", f"{CNI_HAND} && ip netns delete three", "DEL"),
    "n4": ("the container's own PID noted as its shim's",
           f"ctr -n lab images import /root/lab/n4/busybox.tar && ctr -n lab run -d {BUSYBOX} hello "
           "sleep 3600 && ctr -n lab tasks ls | awk '$1 == \"hello\" {print $2}' > /root/lab/n4/shim.pid",
           "shim"),
    "n5": ("a kubelet configuration without address: its API open to all",
           f"cat > /etc/kubernetes/kubelet.yaml <<'EOF'\n{KUBELET_CONFIG}\nEOF\n"
           f"cat > /etc/systemd/system/kubelet.service <<'EOF'\n{KUBELET_UNIT}\nEOF\n"
           "systemctl daemon-reload && systemctl enable --now kubelet 2>/dev/null && "
           f"cp /root/lab/n5/hello.yaml /etc/kubernetes/manifests/ && {HEALTHY}", "loopback"),
})
# Mistakes made on top of the lab's solution (a part the student got right, then broke).
SOLVE_FIRST = {"10", "n2", "n3"}
# Files a README names that the student makes (the others must be staged by start).
STUDENT_MADE = {"/root/lab/n1/image", "/root/lab/n1/bundle", "/root/lab/n1/box.log",
                "/root/lab/n4/shim.pid"}
# Undo what a mistake left outside the lab's own reset (a firewall rule is not the lab's).
UNDO = {"05": "iptables -D FORWARD -p tcp --dport 80 -j DROP"}
# A correct variant of the student's own: it must pass.
# (lab 01: the student removes the mistake, waits for its pods to go, writes their own.)
VARIANTS = {"01": "rm -f /etc/kubernetes/manifests/*; "
                  "while crictl pods --state ready -q | grep -q .; do sleep 1; done\n" + OWN_NGINX,
            "04": "cp /root/lab/04/10-bridge.conf /etc/cni/net.d/",
            # n1: another name, bundle and command of the student's own.
            "n1": "runc delete --force box && mkdir -p /root/mine && cp -a /root/lab/n1/bundle/rootfs "
                  "/root/mine/ && cd /root/mine && runc spec\n"
                  + runc_config("['sh', '-c', 'while sleep 1; do :; done']")
                  + "\nrunc run -d mine </dev/null >/dev/null 2>&1",
            # n3: DEL still frees the address after the namespace is gone.
            "n3": "CNI_PATH=/opt/cni/bin CNI_IFNAME=eth0 CNI_COMMAND=DEL CNI_CONTAINERID=three "
                  "CNI_NETNS=/var/run/netns/three /opt/cni/bin/bridge < /root/lab/n3/hand-net.conf",
            "n4": "ps -o ppid= -p $(cat /root/lab/n4/shim.pid) | tr -d ' ' > /root/lab/n4/shim.pid.new && "
                  "mv /root/lab/n4/shim.pid.new /root/lab/n4/shim.pid",
            "n5": "sed -i '1i address: 127.0.0.1' /etc/kubernetes/kubelet.yaml && "
                  f"systemctl restart kubelet && {HEALTHY}"}


def check(lab_id: str, limit: str = ONE, settle: bool = True) -> dict:
    """The check's verdict; with settle, looked at again while it says "still starting"."""

    def look():
        result = hardway("lab", "check", lab_id, "--limit", limit, "--output", "json", check=False)
        assert result.returncode in (0, 1), result.stderr
        report = json.loads(result.stdout)
        assert (result.returncode == 0) == all(n["passed"] for n in report["nodes"])
        return not any(n["starting"] for n in report["nodes"]), report

    return wait_for(look, 60, f"lab {lab_id}'s check to stop saying 'still starting'",
                    interval=2) if settle else look()[1]


def node_result(report: dict, name: str = ONE) -> dict:
    return next(n for n in report["nodes"] if n["node"] == name)


@pytest.fixture(scope="module")
def nodes(lab):
    hardway("lab", "reset")
    yield lab
    hardway("lab", "reset")


def staged_files(lab_id: str) -> set[str]:
    """The files under /root/lab/<id>/ that the lab's README tells the student to use."""
    readme = labs.find(lab_id).path / "README.md"
    return set(re.findall(rf"/root/lab/{lab_id}/[\w.-]+", readme.read_text()))


@pytest.mark.parametrize("lab_id", SINGLE)
def test_on_one_node_the_check_fails_a_mistake_and_passes_the_solution(nodes, lab_id):
    hardway("lab", "start", lab_id, "--limit", ONE)
    missing = [f for f in staged_files(lab_id) - STUDENT_MADE
               if nodes.sh(ONE, f"test -e {f}").returncode != 0]
    assert missing == [], f"lab {lab_id} start left out: {missing}"
    before = node_result(check(lab_id, settle=False))
    assert not before["passed"] and before["reason"] and before["hint"], before

    what, command, words = MISTAKES[lab_id]
    if lab_id in SOLVE_FIRST:
        hardway("lab", "solve", lab_id, "--limit", ONE)
    nodes.ok(ONE, command)
    try:
        mistaken = node_result(check(lab_id))
        assert not mistaken["passed"], f"lab {lab_id} passes {what}"
        assert words in mistaken["reason"], f"lab {lab_id}, {what}: {mistaken['reason']}"
    finally:
        if lab_id in UNDO:
            nodes.ok(ONE, UNDO[lab_id])

    if lab_id in VARIANTS:
        nodes.ok(ONE, VARIANTS[lab_id])
        variant = node_result(check(lab_id))
        assert variant["passed"], f"lab {lab_id} fails a correct variant: {variant['reason']}"
    hardway("lab", "solve", lab_id, "--limit", ONE)
    after = node_result(check(lab_id))
    assert after["passed"], f"lab {lab_id} still fails after its solution: {after['reason']}"


def test_pod_networking_begins_where_the_node_part_ends_with_the_provisioned_kubelet(nodes):
    """The node part's last lab ends with the kubelet the student wrote; lab 01's start keeps
    their files aside and brings back the provisioned kubelet, byte for byte as on a node
    that never saw the node part."""
    files = "/etc/kubernetes/kubelet.yaml /etc/systemd/system/kubelet.service"
    hardway("lab", "start", "n5", "--limit", ONE)
    nodes.ok(ONE, MISTAKES["n5"][1])  # the student's own kubelet, as the README has it...
    nodes.ok(ONE, VARIANTS["n5"])  # ...with its API on loopback
    assert nodes.ok(ONE, f"sha256sum {files}") != nodes.ok("node2", f"sha256sum {files}")
    nodes.ok(ONE, "rm -rf /root/hardway-saved")
    hardway("lab", "start", "01", "--limit", ONE)
    assert nodes.ok(ONE, f"sha256sum {files}") == nodes.ok("node2", f"sha256sum {files}")
    saved = set(nodes.ok(ONE, "ls /root/hardway-saved/*/").split())
    assert {"kubernetes-kubelet.yaml", "system-kubelet.service"} <= saved, saved
    nodes.ok(ONE, "rm -rf /root/hardway-saved")
    assert nodes.ok(ONE, "systemctl is-active kubelet; systemctl is-enabled kubelet").split() == \
        ["active", "enabled"]
    assert nodes.ok(ONE, "runc list -q; ip netns list; ctr namespaces ls -q").split() == ["k8s.io"]
    before = node_result(check("01", settle=False))
    assert not before["passed"], before
    hardway("lab", "solve", "01", "--limit", ONE)
    after = node_result(check("01"))
    assert after["passed"], f"lab 01 after the node part: {after['reason']}"


def test_lab_08_on_one_node_says_it_needs_two(nodes):
    started = hardway("lab", "start", "08", "--limit", ONE, check=False)
    assert started.returncode == 1
    assert "Lab 08 needs node1 and a partner node" in started.stdout
    assert "hardway up --count 2" in started.stdout


def test_lab_08_on_two_nodes_fails_one_way_routes_and_passes_both(nodes):
    hardway("lab", "start", "08")
    before = check("08", limit="node1,node2")
    assert {n["node"] for n in before["nodes"]} == {"node1", "node2"}
    assert not any(n["passed"] for n in before["nodes"])
    # peers.txt: a comment, then "<node>  pod network <cidr>  via <address>" per partner
    partner = nodes.ok("node1", "grep -v '^#' /root/lab/08/peers.txt").split()
    assert partner[0] == "node2", partner
    cidr, via = partner[3], partner[5]
    nodes.ok("node1", f"ip route add {cidr} via {via}")  # one direction only
    one_way = check("08", limit="node1,node2")
    assert not node_result(one_way, "node2")["passed"]
    assert "no route to node1's pod network" in node_result(one_way, "node2")["reason"]
    hardway("lab", "solve", "08")
    after = check("08", limit="node1,node2")
    assert all(n["passed"] for n in after["nodes"]), after


def test_reset_keeps_the_students_own_manifest_aside_and_leaves_the_start_state(nodes):
    hardway("lab", "solve", "05", "--limit", ONE)
    nodes.ok(ONE, "rm -rf /root/hardway-saved")  # what earlier tests' files were kept as
    nodes.ok(ONE, DECOY_ON_80 + "\ncp /etc/kubernetes/manifests/busybox-pod.yaml "
                                "/etc/kubernetes/manifests/busybox-pod.yaml~")
    reset = hardway("lab", "reset", "--limit", ONE)
    assert "hardway-saved" in reset.stdout
    assert nodes.ok(ONE, "ls /root/hardway-saved/*/").split() == ["manifests-decoy.yml"]
    assert nodes.ok(ONE, "ls -A /etc/kubernetes/manifests /etc/cni/net.d").split() == \
        ["/etc/cni/net.d:", "/etc/kubernetes/manifests:"]
    assert nodes.ok(ONE, "crictl pods -q").strip() == ""
    nodes.ok(ONE, "rm -rf /root/hardway-saved")


def test_unknown_lab_is_a_usage_error():
    result = hardway("lab", "check", "42", check=False)
    assert result.returncode == 2
    assert "no lab '42'" in result.stderr


def test_a_hand_made_service_follows_its_rules_and_comes_apart_cleanly(nodes):
    lab = nodes
    hardway("lab", "solve", "10", "--limit", ONE)
    count = ("for b in backend-1 backend-2; do crictl logs $(crictl ps --pod $(crictl pods "
             "--name \"^$b-\" --state ready -q) -q) 2>/dev/null | grep -c 'GET /' || true; done")
    before = [int(n) for n in lab.ok(ONE, count).split()]
    lab.ok(ONE, "iptables -t nat -D HW-SVC-WEB 1")  # backend-1 leaves the service
    answers = lab.ok(ONE, "for i in $(seq 20); do curl -s -m 2 http://10.32.0.10/ | "
                          "grep -q 'Welcome to nginx' && echo ok; done").split()
    after = [int(n) for n in lab.ok(ONE, count).split()]
    assert answers.count("ok") == 20
    assert after[0] == before[0], "backend-1 still got requests after leaving the service"
    assert after[1] - before[1] >= 20
    hardway("lab", "reset", "--limit", ONE)
    assert "HW-" not in lab.ok(ONE, "iptables -t nat -S")
    assert lab.ok(ONE, "ip -4 route show 10.32.0.0/24").strip() == ""
    assert "169.254.99.9" not in lab.ok(ONE, "ip -4 address show dev lo")
