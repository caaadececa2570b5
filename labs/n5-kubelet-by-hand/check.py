"""Lab n5: the kubelet runs from the student's own systemd unit and KubeletConfiguration,
enabled, healthy, its API on loopback only, and a static pod of theirs runs."""

import pytest
import yaml
from labcheck import look, starting

SCRIPT = """
import json, re, subprocess
def run(*args):
    return subprocess.run(args, capture_output=True, text=True).stdout.strip()
show = run("systemctl", "show", "kubelet", "-p", "LoadState", "-p", "ActiveState",
           "-p", "UnitFileState", "-p", "FragmentPath", "-p", "ExecStart")
seen = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
match = re.search(r"--config[= ](\\S+)", seen.get("ExecStart", ""))
seen["config_path"] = match.group(1) if match else ""
try:
    seen["config"] = open(seen["config_path"]).read() if seen["config_path"] else None
except OSError:
    seen["config"] = None
seen["healthz"] = run("curl", "--noproxy", "*", "-s", "-m", "2", "http://127.0.0.1:10248/healthz")
seen["api"] = [line.split()[3] for line in run("ss", "-Htln", "sport = :10250").splitlines()
               if len(line.split()) > 3]
print(json.dumps(seen))
"""
LOOPBACK = ("127.", "[::1]", "::1")


@pytest.fixture(scope="module")
def seen(host) -> dict:
    return look(host, SCRIPT, "the kubelet's unit")


def test_the_kubelet_runs_from_a_unit_enabled_at_boot(seen):
    assert seen.get("LoadState") == "loaded", (
        "systemd knows no kubelet.service: write /etc/systemd/system/kubelet.service, then "
        "`systemctl daemon-reload`")
    assert seen.get("ActiveState") == "active", (
        f"kubelet.service is {seen.get('ActiveState')}: `journalctl -u kubelet -n 20` says why")
    assert seen.get("UnitFileState") == "enabled", (
        f"kubelet.service is {seen.get('UnitFileState')}, so a reboot leaves the node without it: "
        "give it an [Install] section (WantedBy=multi-user.target) and `systemctl enable kubelet`")


def test_it_reads_a_kubelet_configuration_file(seen):
    assert seen["config_path"], (f"the unit starts `{seen.get('ExecStart', '')[:120]}` without "
                                 "--config=<file>: the settings belong in a KubeletConfiguration")
    assert seen["config"] is not None, f"{seen['config_path']} (its --config) cannot be read"
    try:
        config = yaml.safe_load(seen["config"])
    except yaml.YAMLError as exc:
        raise AssertionError(f"{seen['config_path']} is not valid YAML: {str(exc).splitlines()[0]}") \
            from None
    kind = config.get("kind") if isinstance(config, dict) else None
    assert kind == "KubeletConfiguration", \
        f"{seen['config_path']} has kind {kind!r}, not KubeletConfiguration"


def test_it_is_healthy(seen):
    answer = seen["healthz"] or "nothing"
    assert answer == "ok", (f"http://127.0.0.1:10248/healthz answers {answer!r}: "
                            "`journalctl -u kubelet -n 20` says why")


def test_its_api_listens_on_loopback_only(seen):
    assert seen["api"], "nothing listens on the kubelet's port 10250: is it running?"
    open_to_all = [a for a in seen["api"] if not a.startswith(LOOPBACK)]
    assert not open_to_all, (
        f"the kubelet's API listens on {', '.join(open_to_all)}: with anonymous access and "
        "AlwaysAllow, anyone who reaches it can run commands in your pods; set address: "
        "127.0.0.1 (on loopback only)")


def test_a_static_pod_of_yours_runs(node):
    ready = {p["id"]: p["metadata"]["name"] for p in node.pods if p["state"] == "SANDBOX_READY"
             and not node.leaving(p)}
    running = [c for c in node.containers if c["state"] == "CONTAINER_RUNNING"
               and c["podSandboxId"] in ready]
    if running:
        return
    files = node.files("/etc/kubernetes/manifests")
    states = ", ".join(f"{c['metadata']['name']} {c['state'].removeprefix('CONTAINER_').lower()}"
                       for c in node.containers) or "none"
    # A container made but not yet started: on a busy node, seconds after its sandbox; or
    # the student's kubelet restarted moments ago, no sandbox yet.
    creating = node.just_created([c for c in node.containers if c["podSandboxId"] in ready])
    if files and (node.settling() or creating or node.kubelet_just_started()):
        raise starting(f"the kubelet is acting on {', '.join(files)}")
    raise AssertionError(f"no static pod runs (pods: {', '.join(ready.values()) or 'none'}; containers: "
                         f"{states}; manifests: {', '.join(files) or 'none'}): copy "
                         "/root/lab/n5/hello.yaml into the staticPodPath of your configuration")
