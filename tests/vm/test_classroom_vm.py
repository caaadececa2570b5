"""A classroom VM with its own kernel: site.yml from this host over SSH as a sudo user,
artifacts from the host's mirror; modules, sysctls and swap for real; and after a reboot
containerd, the kubelet and a static pod come back."""

from __future__ import annotations

import time

import yaml

from hardway import provision
from hardway.children import ansible_env, run, tool
from hardway.mirror.images import image_names
from hardway.mirror.store import Mirror
from hardway.settings import REPO
from hardway.vm.machine import MIRROR_ADDRESS
from tests.vm.conftest import log

STATIC_POD = """apiVersion: v1
kind: Pod
metadata:
  name: sleeper
spec:
  hostNetwork: true
  containers:
  - name: sleeper
    image: {image}
    imagePullPolicy: Never
    command: ['sleep', '100000']
"""


def wait_for(vm, command: str, what: str, deadline: float) -> str:
    """Until the command succeeds in the VM; what it printed last otherwise."""
    end = time.monotonic() + deadline
    seen = ""
    while time.monotonic() < end:
        result = vm.ssh(command, check=False, timeout=60)
        if result.returncode == 0:
            return result.stdout
        seen = (result.stdout + result.stderr).strip()[-300:]
        time.sleep(3)
    raise AssertionError(f"{what}: not after {deadline:.0f} s; last seen: {seen}")


def node_state(vm) -> dict[str, str]:
    probe = {
        "modules": "lsmod | awk '$1 == \"br_netfilter\" || $1 == \"overlay\" {print $1}' | sort"
                   " | tr '\\n' ' '",
        "ip_forward": "cat /proc/sys/net/ipv4/ip_forward",
        # Only there once br_netfilter is loaded.
        "bridge_nf": "cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo absent",
        "swap": "tail -n +2 /proc/swaps | wc -l",
        "services": "systemctl is-active containerd kubelet | tr '\\n' ' ' || true",
        "cgroup": "stat -fc %T /sys/fs/cgroup",
    }
    return {key: vm.ssh(command).stdout.strip() for key, command in probe.items()}


def test_site_yml_on_a_classroom_vm_survives_a_reboot(settings, mirror_served, machine):
    boot = machine.start()
    log(f"VM booted ({machine.record.accel}) and answers SSH: {boot:.1f} s")
    before = node_state(machine)
    assert before["swap"] == "1", f"the VM should start with its swap file on: {before}"
    assert before["cgroup"] == "cgroup2fs"
    root_login = run(["ssh", *machine.ssh_args(), "-p", str(machine.record.port),
                      "root@127.0.0.1", "true"], what="ssh as root", check=False)
    assert root_login.returncode != 0, "root's SSH login must be refused, as on a cloud VM"

    inventory = settings.inventory
    (inventory / "group_vars/all").mkdir(parents=True, exist_ok=True)
    mirror = Mirror(settings.mirror)
    url = f"http://{MIRROR_ADDRESS}:{settings.mirror_port}"
    (inventory / "group_vars/all/mirror.yml").write_text(
        yaml.safe_dump(provision.mirror_vars(mirror, url), sort_keys=True))
    hosts = {"all": {"children": {"lab_nodes": {"hosts": {"vm1": {
        "ansible_host": "127.0.0.1", "ansible_port": machine.record.port,
        "ansible_user": "debian", "lab_pod_cidr": "10.240.1.0/24"}}}},
        "vars": {"ansible_ssh_private_key_file": str(machine.key),
                 "ansible_ssh_common_args": " ".join(machine.ssh_args()[2:]),
                 "ansible_python_interpreter": "/usr/bin/python3",
                 # The VM has no archive to refresh from; its image holds the packages.
                 "node_prereqs_update_cache": False}}}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))

    began = time.monotonic()
    run([tool("ansible-playbook"), "-i", str(inventory / "hosts.yml"), str(REPO / "site.yml")],
        what="site.yml on the VM", capture=False, cwd=REPO, env=ansible_env(), timeout=3600)
    log(f"site.yml on the VM: {time.monotonic() - began:.1f} s")

    after = node_state(machine)
    assert after == {"modules": "br_netfilter overlay", "ip_forward": "1", "bridge_nf": "1",
                     "swap": "0", "services": "active active", "cgroup": "cgroup2fs"}
    machine.ssh(f"cat > /etc/kubernetes/manifests/sleeper.yaml <<'EOF'\n"
                f"{STATIC_POD.format(image=image_names()['busybox'])}EOF")
    began = time.monotonic()
    wait_for(machine, "crictl ps --name sleeper --state running -q | grep .",
             "the static pod running", 600)
    log(f"static pod running: {time.monotonic() - began:.1f} s after its manifest")

    took = machine.reboot()
    log(f"VM rebooted and answers SSH: {took:.1f} s")
    began = time.monotonic()
    wait_for(machine, "crictl ps --name sleeper --state running -q | grep .",
             "the static pod running again after the reboot", 900)
    log(f"static pod back: {time.monotonic() - began:.1f} s after SSH answered")
    assert node_state(machine) == after
