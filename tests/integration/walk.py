"""Walking the labs on real nodes, as a student meets them: what each lab's walk does, the
plausible mistakes and correct variants it tries. test_labs.py walks pod networking and
test_node_part.py the node part, each on its worker's own test lab."""

from __future__ import annotations

import json
import re

from hardway import labs
from tests.integration.conftest import TestLab, hardway, wait_for

ONE = "node1"


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
# The control-plane part's (labs/c*), on a control plane's node.
ETCDCTL = ("ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=/etc/kubernetes/pki/ca.crt "
           "ETCDCTL_CERT=/etc/kubernetes/pki/apiserver-etcd-client.crt "
           "ETCDCTL_KEY=/etc/kubernetes/pki/apiserver-etcd-client.key etcdctl")
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.kubeconfig"
KUBELET_KUBECONFIG = ("KC={kc}; P=/etc/kubernetes/pki; "
                      "kubectl config set-cluster hardway --server=https://127.0.0.1:6443 "
                      "--certificate-authority=$P/ca.crt {embed} --kubeconfig=$KC && "
                      "kubectl config set-credentials system:node:$(hostname) "
                      "--client-certificate=$P/kubelet.crt --client-key=$P/kubelet.key {embed} "
                      "--kubeconfig=$KC && kubectl config set-context default --cluster=hardway "
                      "--user=system:node:$(hostname) --kubeconfig=$KC && "
                      "kubectl config use-context default --kubeconfig=$KC")
JOINED_UNIT = ("IP=$(ip -4 -o address show scope global | awk '{{print $4}}' | cut -d/ -f1 | head -1) && "
               "sed -i \"s|^ExecStart=.*|ExecStart=/usr/local/bin/kubelet "
               "--config=/etc/kubernetes/kubelet.yaml --kubeconfig={kc} --node-ip=$IP|\" "
               "/etc/systemd/system/kubelet.service && "
               "systemctl daemon-reload && systemctl restart kubelet")
MIRROR_RUNS = (f"for i in $(seq 90); do {KUBECTL} get pod hello-$(hostname) 2>/dev/null "
               "| grep -q Running && break; sleep 1; done; for i in $(seq 60); do curl -sk -o /dev/null "
               "-w '%{http_code}' https://127.0.0.1:10250/pods | grep -q '^[24]0[13]$' && break; "
               "sleep 1; done")
MISTAKES.update({
    "c1": ("the key put without its leading slash",
           f"{ETCDCTL} put hardway/c1/greeting 'hello etcd' && "
           "echo /registry/namespaces/kube-system > /root/lab/c1/answer", "hardway/c1/greeting"),
    "c2": ("the pod placed on the node by hand (spec.nodeName)",
           "sed 's/^spec:/spec:\\n  nodeName: '$(hostname)'/' /root/lab/c2/web.yaml | "
           f"{KUBECTL} apply -f -", "nodeName"),
    "c3": ("joined, but anonymous callers still let in (only --kubeconfig added)",
           KUBELET_KUBECONFIG.format(kc="/etc/kubernetes/kubelet.kubeconfig", embed="") + " && "
           + JOINED_UNIT.format(kc="/etc/kubernetes/kubelet.kubeconfig") + " && "
           f"cp /root/lab/c3/hello.yaml /etc/kubernetes/manifests/ && {MIRROR_RUNS}", "anonymous"),
})
HOSTPORT_RUNS = (f"systemctl start kube-scheduler && {KUBECTL} apply -f /root/lab/c4/web-hostport.yaml && "
                 f"{KUBECTL} wait --for=jsonpath='{{.status.phase}}'=Running pod/web-hostport --timeout=120s")
MISTAKES["c4"] = ("the second pod placed on the node by hand (spec.nodeName)",
                  f"{HOSTPORT_RUNS} && sed 's/^spec:/spec:\\n  nodeName: '$(hostname)'/' "
                  f"/root/lab/c4/web-hostport-2.yaml | {KUBECTL} apply -f - && "
                  f"{KUBECTL} wait --for=jsonpath='{{.status.phase}}'=Failed pod/web-hostport-2 "
                  "--timeout=60s",
                  "nodeName")
IPAM = ("sed -i '/^ExecStart=/a\\  --allocate-node-cidrs=true --cluster-cidr={cidr} \\\\' "
        "/etc/systemd/system/kube-controller-manager.service && systemctl daemon-reload && ")
REPLACED = (f"{KUBECTL} rollout status deployment/{{name}} --timeout=120s && {KUBECTL} delete pod "
            f"$({KUBECTL} get pods -l app={{name}} -o jsonpath='{{{{.items[0].metadata.name}}}}') && "
            f"{KUBECTL} rollout status deployment/{{name}} --timeout=120s")
MISTAKES["c5"] = ("the controller manager started without node IPAM",
                  f"systemctl start kube-controller-manager && {KUBECTL} apply -f "
                  "/root/lab/c5/web-deployment.yaml && " + REPLACED.format(name="web"), "podCIDR")
JOINED_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: systemd
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: true
address: 0.0.0.0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: /etc/kubernetes/pki/kubelet-serving.crt
tlsPrivateKeyFile: /etc/kubernetes/pki/kubelet-serving.key"""
# Mistakes made on top of the lab's solution (a part the student got right, then broke).
SOLVE_FIRST = {"10", "n2", "n3"}
# Files a README names that the student makes (the others must be staged by start).
STUDENT_MADE = {"/root/lab/n1/image", "/root/lab/n1/bundle", "/root/lab/n1/box.log",
                "/root/lab/n4/shim.pid", "/root/lab/c1/answer"}
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
                  f"systemctl restart kubelet && {HEALTHY}",
            # c1: the value from stdin (with its newline), the answer found with grep.
            "c1": f"echo 'hello etcd' | {ETCDCTL} put /hardway/c1/greeting && {ETCDCTL} get "
                  "/registry/namespaces --prefix --keys-only | grep kube-system > /root/lab/c1/answer",
            # c2: the pod made with kubectl run, under the same name.
            "c2": f"{KUBECTL} delete pod web --grace-period=0 --force --wait=true && "
                  f"{KUBECTL} run web --image={NGINX} --image-pull-policy=IfNotPresent",
            # c4: from both claims deleted (after a pod placed by hand on the port is deleted,
            # 1.36.4's scheduler sent the next claim to the node anyway), a second claim of the
            # student's own, under another name.
            "c4": f"{KUBECTL} delete pod web-hostport web-hostport-2 --wait=true && {HOSTPORT_RUNS} && "
                  "sed 's/name: web-hostport-2/name: my-web/' /root/lab/c4/web-hostport-2.yaml | "
                  f"{KUBECTL} apply -f - && for i in $(seq 60); do {KUBECTL} get pod my-web -o "
                  "jsonpath='{.status.conditions[0].reason}' | grep -q Unschedulable && break; sleep 1; done",
            # c5: IPAM from another range, a Deployment of the student's own made with kubectl.
            "c5": f"{KUBECTL} delete deployment web --wait=true && "
                  + IPAM.format(cidr="10.244.0.0/16") + "systemctl restart kube-controller-manager && "
                  f"{KUBECTL} create deployment mine --image={NGINX} --replicas=3 && "
                  + REPLACED.format(name="mine")
                  + f" && for i in $(seq 60); do {KUBECTL} get nodes -o "
                  "jsonpath='{.items[*].spec.podCIDR}' | grep -q . && break; sleep 1; done",
            # c3: a configuration of the student's own, its kubeconfig elsewhere, certificates embedded.
            "c3": "mkdir -p /var/lib/kubelet && "
                  + KUBELET_KUBECONFIG.format(kc="/var/lib/kubelet/kubeconfig", embed="--embed-certs")
                  + f" && cat > /etc/kubernetes/kubelet.yaml <<'EOF'\n{JOINED_CONFIG}\nEOF\n"
                  + JOINED_UNIT.format(kc="/var/lib/kubelet/kubeconfig") + f" && {MIRROR_RUNS}"}


def check(lab_id: str, limit: str = ONE, settle: bool = True) -> dict:
    """The check's verdict; with settle, looked at again while it says "still starting"."""

    def look():
        result = hardway("lab", "check", lab_id, "--limit", limit, "--output", "json", check=False)
        assert result.returncode in (0, 1), result.stderr
        report = json.loads(result.stdout)
        assert (result.returncode == 0) == all(n["passed"] for n in report["nodes"])
        return not any(n["starting"] for n in report["nodes"]), report

    # Longer than the longest "still starting" (labcheck.CREATING), so the walk sees the verdict.
    return wait_for(look, 90, f"lab {lab_id}'s check to stop saying 'still starting'",
                    interval=2) if settle else look()[1]


def node_result(report: dict, name: str = ONE) -> dict:
    return next(n for n in report["nodes"] if n["node"] == name)


def staged_files(lab_id: str) -> set[str]:
    """The files under /root/lab/<id>/ that the lab's README tells the student to use."""
    readme = labs.find(lab_id).path / "README.md"
    return set(re.findall(rf"/root/lab/{lab_id}/[\w.-]+", readme.read_text()))


def walk(nodes: TestLab, lab_id: str) -> None:
    """A one-node lab as a student meets it: start (everything its README names staged),
    the check fails, a plausible mistake fails, a correct variant and the solution pass."""
    hardway("lab", "start", lab_id, "--limit", ONE)
    missing = [f for f in staged_files(lab_id) - STUDENT_MADE
               if nodes.sh(ONE, f"test -e {f}").returncode != 0]
    assert missing == [], f"lab {lab_id} start left out: {missing}"
    before = node_result(check(lab_id, settle=False))
    assert not before["passed"] and before["reason"] and before["hint"], before

    what, command, words = MISTAKES[lab_id]
    if lab_id in SOLVE_FIRST:
        hardway("lab", "solve", lab_id, "--limit", ONE)
    nodes.ok(ONE, command, timeout=300)
    try:
        mistaken = node_result(check(lab_id))
        assert not mistaken["passed"], f"lab {lab_id} passes {what}"
        assert words in mistaken["reason"], f"lab {lab_id}, {what}: {mistaken['reason']}"
    finally:
        if lab_id in UNDO:
            nodes.ok(ONE, UNDO[lab_id])

    if lab_id in VARIANTS:
        nodes.ok(ONE, VARIANTS[lab_id], timeout=300)
        variant = node_result(check(lab_id))
        assert variant["passed"], f"lab {lab_id} fails a correct variant: {variant['reason']}"
    hardway("lab", "solve", lab_id, "--limit", ONE)
    after = node_result(check(lab_id))
    assert after["passed"], f"lab {lab_id} still fails after its solution: {after['reason']}"


