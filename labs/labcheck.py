"""Helpers for the lab checks (testinfra).

A check looks at the node once, as it is now, and never sleeps: what is on its way (a
manifest or a CNI config changed seconds ago, a container being created) fails as
"still starting: ... retry in N s", which `hardway lab check` reports as such; anything else
that fails says what was seen, in the student's terms.

Pods are found by what the student controls: the pod's name (a static pod's name is the
manifest's metadata.name and the node's name), its containers' names and images, its ports.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
from contextlib import suppress
from datetime import datetime
from functools import cached_property

MANIFESTS = "/etc/kubernetes/manifests"
CNI_CONFIGS = "/etc/cni/net.d"
STARTING = "still starting: "
# Seconds after a change in which the kubelet or containerd may not have acted on it yet:
# the kubelet rereads manifests every 5 s, retries a pod's sandbox about every 10 s.
SETTLE = 15
# Seconds a container may stay created but not started (a busy node), or a kubelet just
# (re)started make no sandbox, before that is a failure.
CREATING = 60
# The kubelet's own list of the pods it wants (static pods included): a sandbox it no
# longer wants is an old copy on its way out.
KUBELET_PODS = "https://127.0.0.1:10250/pods"
# A kubelet that joined an API server lets no anonymous caller in: the checks ask it with
# the API server's own kubelet client certificate, where the node has one.
KUBELET_CLIENT = "/etc/kubernetes/pki/apiserver-kubelet-client"
# Every request a check makes goes straight to the node, pod or address it names: a proxy
# set for the login (a classroom machine's http_proxy) must not answer instead.
CURL = "curl --noproxy '*' -m 2"


def starting(what: str, retry: int = 5) -> AssertionError:
    return AssertionError(f"{STARTING}{what}: retry in {retry} s")


def _begun(status: dict) -> bool:
    """Has the kubelet begun on this pod? One it has not is Pending with no start time (it
    waits, say, for an old copy of the same pod to stop)."""
    return bool(status.get("startTime")) or status.get("phase", "Pending") != "Pending"


def _began_at(status: dict) -> int | None:
    """When the kubelet began the pod (its startTime), in seconds since the epoch."""
    with suppress(KeyError, TypeError, ValueError):
        return int(datetime.fromisoformat(status["startTime"]).timestamp())
    return None


class Node:
    """What one node shows, read in one command per check: its pods and containers as
    the CRI sees them, and when its manifests and CNI configs last changed."""

    def __init__(self, host):
        self.host = host
        # Pod names, annotations and commands are the student's: no fixed separator is safe.
        cut = f"@@{secrets.token_hex(8)}@@"
        out = host.run(
            f"set -e; hostname; echo {cut}; crictl pods -o json; echo {cut}; crictl ps -a -o json; "
            f"echo {cut}; date +%s; echo {cut}; stat -c '%Y %n' {MANIFESTS}/* {CNI_CONFIGS}/* "
            f"2>/dev/null || true; echo {cut}; {CURL} -sk {KUBELET_PODS} $(test -r {KUBELET_CLIENT}.key "
            f"&& echo --cert {KUBELET_CLIENT}.crt --key {KUBELET_CLIENT}.key) || true; echo {cut}; "
            "ps -o etimes= -C kubelet || true")
        parts = out.stdout.split(cut)
        if out.rc != 0 or len(parts) != 7:
            detail = (out.stderr.strip().splitlines() or ["no answer"])[-1]
            raise AssertionError(f"crictl does not answer on this node ({detail}): is "
                                 "containerd running? (`systemctl status containerd`)")
        self.name = parts[0].strip().lower()
        self.pods = sorted(json.loads(parts[1]).get("items") or [],
                           key=lambda p: int(p.get("createdAt", 0)), reverse=True)
        self.containers = sorted(json.loads(parts[2]).get("containers") or [],
                                 key=lambda c: int(c.get("createdAt", 0)), reverse=True)
        self.now = int(parts[3])
        self.changed = {}
        for line in parts[4].strip().splitlines():
            stamp, _, path = line.partition(" ")
            self.changed[path] = int(stamp)
        # The pods the kubelet wants now: uid -> (pod name, has it begun on the pod, when);
        # None if it does not answer.
        self.wanted: dict[str, tuple[str, bool, int | None]] | None = None
        with suppress(ValueError, KeyError, TypeError, AttributeError):
            self.wanted = {p["metadata"]["uid"]: (p["metadata"]["name"], _begun(p.get("status") or {}),
                                                  _began_at(p.get("status") or {}))
                           for p in json.loads(parts[5])["items"] or []}
        # Seconds since the newest kubelet process started; None when none runs.
        self.kubelet_age = min((int(age) for age in parts[6].split()), default=None)

    # -- what changed lately --------------------------------------------------------

    def seconds_since_change(self, folder: str) -> int | None:
        stamps = [t for p, t in self.changed.items() if p.startswith(folder + "/")]
        return self.now - max(stamps) if stamps else None

    def settling(self) -> bool:
        """Did a manifest or a CNI config change so lately that the kubelet and containerd
        may not have acted on it yet?"""
        ages = [self.seconds_since_change(folder) for folder in (MANIFESTS, CNI_CONFIGS)]
        return any(age is not None and age < SETTLE for age in ages)

    def kubelet_just_started(self) -> bool:
        """Did the kubelet (re)start so lately that it may have made no sandbox yet? One
        restarted on a busy node had none when its manifest was 15 s old."""
        return self.kubelet_age is not None and self.kubelet_age < CREATING

    def files(self, folder: str) -> list[str]:
        return sorted(p.rsplit("/", 1)[1] for p in self.changed if p.startswith(folder + "/"))

    # -- pods -----------------------------------------------------------------------

    def sandboxes(self, name: str) -> list[dict]:
        """Every sandbox of the static pod `name` on this node, newest first."""
        wanted = f"{name}-{self.name}"
        return [p for p in self.pods if p["metadata"]["name"] == wanted]

    def leaving(self, sandbox: dict) -> bool:
        """Is this sandbox an old copy the kubelet is tearing down (its manifest changed
        or went away)?"""
        return self.wanted is not None and sandbox["metadata"]["uid"] not in self.wanted

    def pod(self, name: str) -> dict | None:
        """The pod's live sandbox: the newest Ready one the kubelet still wants."""
        ready = [p for p in self.sandboxes(name)
                 if p["state"] == "SANDBOX_READY" and not self.leaving(p)]
        return ready[0] if ready else None

    def replacing(self, name: str) -> bool:
        """Is the kubelet between an old copy of the pod and its new one? It stops the old
        copy (within its grace period, 30 s by default) and begins the new one after."""
        if any(p["state"] == "SANDBOX_READY" and self.leaving(p) for p in self.sandboxes(name)):
            return True
        wanted = f"{name}-{self.name}"
        return any(pod == wanted and not begun for pod, begun, _ in (self.wanted or {}).values())

    def begun_lately(self, name: str) -> bool:
        """Did the kubelet begin the pod so lately that it may still be making its sandbox?
        (It begins a replacement only once the old copy has stopped, which can be long after
        the manifest changed.)"""
        wanted = f"{name}-{self.name}"
        return any(pod == wanted and began is not None and self.now - began < SETTLE
                   for pod, _, began in (self.wanted or {}).values())

    def just_created(self, containers: list[dict]) -> bool:
        """Is one of these containers made moments ago and not started yet?"""
        return any(c["state"] == "CONTAINER_CREATED"
                   and self.now - int(c.get("createdAt", 0)) // 10**9 < CREATING for c in containers)

    def containers_of(self, name: str, container: str | None = None) -> list[dict]:
        pod = self.pod(name)
        if not pod:
            return []
        return [c for c in self.containers if c["podSandboxId"] == pod["id"]
                and (container is None or c["metadata"]["name"] == container)]

    def running(self, name: str, container: str | None = None) -> dict | None:
        found = [c for c in self.containers_of(name, container) if c["state"] == "CONTAINER_RUNNING"]
        return found[0] if found else None

    def describe(self, name: str) -> str:
        """What the node shows of a pod, for a failure message (old copies left aside)."""
        sandboxes = [p for p in self.sandboxes(name) if not self.leaving(p)]
        manifest = self.manifest_for(name)
        if not sandboxes and manifest:
            return (f"the kubelet has made no pod {name} from {MANIFESTS}/{manifest[0]} "
                    "(`journalctl -u kubelet --since -2min` says why)")
        if not sandboxes:
            return f"no pod {name} (pods here: {', '.join(self.pod_names()) or 'none'})"
        states = [f"{c['metadata']['name']} {c['state'].removeprefix('CONTAINER_').lower()}"
                  f" (attempt {c['metadata'].get('attempt', 0)})" for c in self.containers_of(name)]
        sandbox = sandboxes[0]["state"].removeprefix("SANDBOX_").lower()
        return f"pod {name}: sandbox {sandbox}, containers: {', '.join(states) or 'none'}"

    def pod_names(self) -> list[str]:
        suffix = f"-{self.name}"
        return sorted({p["metadata"]["name"].removesuffix(suffix) for p in self.pods
                       if p["state"] == "SANDBOX_READY" and not self.leaving(p)})

    def require_running(self, name: str, container: str | None = None, why: str = "") -> dict:
        """The pod's running container; or a failure saying what is there instead, which is
        "still starting" while the manifests changed moments ago or the pod is brand new."""
        found = self.running(name, container)
        if found:
            return found
        pod = self.pod(name)
        young = (pod is not None and self.now - int(pod["createdAt"]) // 10**9 < SETTLE) \
            or self.begun_lately(name) or self.just_created(self.containers_of(name, container))
        # A container that ran and exited is crashing, not starting.
        crashed = any(c["state"] == "CONTAINER_EXITED" for c in self.containers_of(name, container))
        declared = pod is not None or self.manifest_for(name) is not None
        if self.replacing(name) and not crashed:
            raise starting(f"the kubelet is replacing pod {name}: the old copy stops first (within "
                           "its grace period), then the new one begins")
        if (self.settling() or young) and declared and not crashed:
            raise starting(f"{self.describe(name)}; the kubelet is still acting on a change")
        if pod is None:
            missing = why and not self.manifest_for(name)
            raise AssertionError(f"{self.describe(name)}{': ' + why if missing else ''}")
        raise AssertionError(f"{self.describe(name)}: {container or 'its container'} is not running "
                             "(`crictl ps -a` and `crictl logs <container>` say why)")

    @cached_property
    def _inspected(self) -> dict[str, dict]:
        return {}

    def inspect_pod(self, pod: dict) -> dict:
        if pod["id"] not in self._inspected:
            out = self.host.run(f"crictl inspectp -o json {pod['id']}")
            self._inspected[pod["id"]] = json.loads(out.stdout) if out.rc == 0 else {}
        return self._inspected[pod["id"]]

    def network_mode(self, name: str) -> str:
        """NODE (hostNetwork) or POD (its own namespace), or '' without a live sandbox."""
        pod = self.pod(name)
        if not pod:
            return ""
        status = self.inspect_pod(pod).get("status", {})
        return status.get("linux", {}).get("namespaces", {}).get("options", {}).get("network", "")

    def pod_ip(self, name: str) -> str | None:
        """The pod's own address (containerd reports none for a host-network pod)."""
        pod = self.pod(name)
        if not pod:
            return None
        return self.inspect_pod(pod).get("status", {}).get("network", {}).get("ip") or None

    def pid_of(self, container: dict) -> int:
        out = self.host.run(f"crictl inspect -o json {container['id']}")
        return int(json.loads(out.stdout)["info"]["pid"]) if out.rc == 0 else 0

    def logs(self, container: dict) -> str:
        return self.host.run(f"crictl logs {container['id']} 2>&1").stdout

    def exec_in(self, container: dict, command: str) -> tuple[int, str]:
        """Run a shell command inside a container: (exit code, output)."""
        out = self.host.run(f"crictl exec {container['id']} sh -c {shlex.quote(command)} 2>&1")
        return out.rc, out.stdout

    @cached_property
    def manifests(self) -> dict[str, dict]:
        """Every manifest in the kubelet's folder that parses, by file name."""
        import yaml

        out = self.host.run(f"for f in {MANIFESTS}/*; do [ -f \"$f\" ] && printf '@@%s\\n' \"$f\" "
                            "&& cat \"$f\"; done; true")
        found = {}
        for chunk in out.stdout.split("@@")[1:]:
            path, _, text = chunk.partition("\n")
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict):
                found[path.rsplit("/", 1)[-1]] = data
        return found

    def manifest_for(self, name: str) -> tuple[str, dict] | None:
        """(file name, manifest) of the file that defines pod `name`, whatever the file is called."""
        for path, data in self.manifests.items():
            if (data.get("metadata") or {}).get("name") == name:
                return path, data
        return None

    # -- the network ----------------------------------------------------------------

    def http(self, address: str) -> str:
        """The page served at address (host[:port]), asked from the node ('' when nothing
        answers)."""
        result = self.host.run(f"{CURL} -fsS http://{address}/")
        return result.stdout if result.rc == 0 else ""

    def http_from(self, container: dict, address: str, port: int = 80) -> str:
        """What `GET /` on address:port returns, asked from the container's network namespace,
        or curl's error: the node's curl entered into that namespace meets the same
        addresses, routes and rules as the pod's own client, in milliseconds where
        `crictl exec` takes a second."""
        pid = self.pid_of(container)
        if not pid:
            return "the container has no process"
        return self.host.run(f"nsenter -t {pid} -n {CURL} -sS http://{address}:{port}/ 2>&1").stdout

    def listeners(self, port: int) -> list[int]:
        """PIDs of the processes listening on a TCP port in the node's own namespace."""
        out = self.host.run(f"ss -Htlnp 'sport = :{port}'").stdout
        return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", out)})



def nginx_page(page: str) -> bool:
    return "Welcome to nginx" in page


# -- a look at the node by a script of ours ---------------------------------------------------

# An ICMP echo in Python: lab nodes have no `ping`. ping(address) -> bool, as root.
PING = '''
import os, socket, struct, time
def _sum(data):
    data += b"\\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
def ping(address, timeout=1.0):
    ident = os.getpid() & 0xFFFF
    body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"hardway-lab"
    packet = body[:2] + struct.pack("!H", _sum(body)) + body[4:]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, (address, 0))
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                data, source = s.recvfrom(2048)
                start = (data[0] & 15) * 4
                kind, _, _, who, _ = struct.unpack("!BBHHH", data[start:start + 8])
                if kind == 0 and who == ident and source[0] == address:
                    return True
        except OSError:
            return False
    return False
'''


# The start of every control-plane check's script: kubectl as the admin with short deadlines,
# and run(), which answers (returncode, stdout, stderr) and never raises.
KUBECTL_SCRIPT = """
import json, subprocess, time
KUBECTL = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.kubeconfig", "--request-timeout=2s"]
def run(*args, timeout=5):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, "", str(exc)
    return out.returncode, out.stdout, out.stderr.strip()
"""


def look(host, script: str, what: str, *args: str) -> dict:
    """Run a Python script on the node (args as its sys.argv[1:]), in one command, and
    return the JSON it prints: a check's single look at what it judges."""
    words = " ".join(shlex.quote(str(a)) for a in args)
    out = host.run(f"python3 - {words} <<'HARDWAY_EOF'\n{script}\nHARDWAY_EOF")
    try:
        return json.loads(out.stdout)
    except ValueError:
        detail = (out.stderr.strip().splitlines() or ["no answer"])[-1]
        raise AssertionError(f"could not look at {what} on this node ({detail})") from None


# What a client of the control plane (kubectl, etcdctl, curl) says when something is wrong
# with the connection or a certificate, and what the student should look at then.
TLS_TROUBLE = (
    ("certificate has expired or is not yet valid",
     "a certificate has expired or is not valid yet: compare `openssl x509 -noout -dates -in "
     "<the .crt>` of the client and the server with `date`"),
    ("certificate has expired",
     "a certificate has expired: `openssl x509 -noout -dates -in <the .crt>` shows when"),
    ("certificate is valid for",
     "the server's certificate does not name the address asked for: `openssl x509 -noout -ext "
     "subjectAltName -in <the server's .crt>` lists the names it holds"),
    ("signed by unknown authority",
     "the server's certificate is not signed by the CA given: use this control plane's "
     "/etc/kubernetes/pki/ca.crt"),
    ("bad certificate",
     "the server refused the client certificate: is it signed by this control plane's CA, and "
     "does the key belong to it?"),
    ("Unauthorized",
     "the API server does not know the client: its certificate is not signed by this control "
     "plane's CA (or has expired)"),
    ("connection refused",
     "nothing listens there: is the service running (`systemctl status <it>`)?"),
    ("was refused",
     "nothing listens there: is the service running (`systemctl status <it>`)?"),
    ("failing checks: etcd",
     "the API server cannot reach etcd: is etcd running (`systemctl status etcd`), and do "
     "kube-apiserver's --etcd-servers and etcd client certificate match it?"),
    ("Client.Timeout exceeded",
     "no answer in time: is the API server running, and can it reach etcd? (`kubectl get --raw "
     "/readyz` names its failing checks)"),
    ("deadline exceeded",
     "no answer in time: is the service running, and does it take TLS with a client "
     "certificate (etcd does)?"),
)


def explain(error: str) -> str:
    """A client's error, followed by what it points at when it is one a student meets."""
    error = " ".join(error.split())[-300:]
    for words, meaning in TLS_TROUBLE:
        if words in error:
            return f"{error} ({meaning})"
    return error
