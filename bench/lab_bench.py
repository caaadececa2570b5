"""Benchmarks for the local lab: prints figures, asserts nothing.

    .venv/bin/python bench/lab_bench.py [--cold-image] [--cold-kubelet]

Measures, on a lab of its own (bridge hwbnc0), the warm mirror build, the base image
(warm, and cold into a scratch cache with --cold-image), `nodes up` for 1 and 3 nodes,
site.yml on fresh nodes (every node downloads from the mirror: the cold case for the
nodes), `hardway up` on the provisioned, healthy lab, site.yml's idempotent re-run (the
second converge, docs/provisioning.md) and a --check run, disk and memory per node, and
`nodes down`. Beside the one-node runs, bench/provision.sh does site.yml's steps as one
shell script over one ssh connection on a second fresh node, fresh and again: the ratio
Ansible / script says how much of site.yml's time is Ansible's own. --cold-kubelet
rebuilds the kubelet with an empty Go build cache (about 6.5 min on 2 cores) and reports
its time and peak memory.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {"HARDWAY_BRIDGE": "hwbnc0", "HARDWAY_SUBNET": "10.76.0.0/24",
       "HARDWAY_STATE": "/var/lib/hardway-bench", "HARDWAY_INVENTORY":
       "/var/lib/hardway-bench/inventory", "HARDWAY_MIRROR_PORT": "8076"}


def run(*args: str, env: dict | None = None, check: bool = True) -> tuple[float, str]:
    start = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True,
                            env=dict(os.environ, **ENV, **(env or {}), NO_COLOR="1"), cwd=REPO)
    elapsed = time.monotonic() - start
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed, result.stdout + result.stderr


def hardway(*args: str, **kwargs) -> tuple[float, str]:
    return run(str(BIN / "hardway"), *args, **kwargs)


def playbook(*args: str) -> tuple[float, str]:
    return run(str(BIN / "ansible-playbook"), "-i", f"{ENV['HARDWAY_INVENTORY']}/hosts.yml",
               "site.yml", *args, env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                                       "PATH": f"{BIN}:{os.environ['PATH']}"})


def du(path: str) -> str:
    return subprocess.run(["du", "-sh", path], capture_output=True, text=True).stdout.split()[0]


def node_memory_mib() -> list[str]:
    sizes = []
    for node in sorted(Path(ENV["HARDWAY_STATE"], "nodes").glob("*/node.json")):
        import json

        cgroups = json.loads(node.read_text())["cgroups"]
        memory = next(c for c in cgroups if "/memory/" in c)
        usage = Path(memory, "memory.usage_in_bytes").read_text()
        stat = dict(line.split() for line in Path(memory, "memory.stat").read_text().splitlines())
        # usage less page cache: what the node's processes really hold
        held = int(usage) - int(stat.get("total_cache", 0))
        sizes.append(f"{node.parent.name} {held / 2**20:.0f} MiB")
    return sizes


# Where the roles install each artifact's files (roles/*/tasks/install.yml, defaults).
INSTALLS = {
    "kubelet": {"kubelet": "/usr/local/bin/kubelet"},
    "containerd": {f"bin/{b}": f"/usr/local/bin/{b}"
                   for b in ("containerd", "containerd-shim-runc-v2", "ctr")},
    "runc": {"runc": "/usr/local/sbin/runc"},
    "cni_plugins": {p: f"/opt/cni/bin/{p}"
                    for p in ("bridge", "host-local", "loopback", "portmap", "firewall", "tuning")},
    "crictl": {"crictl": "/usr/local/bin/crictl"},
}
# What site.yml renders on a node, copied from one it provisioned to the script's node.
CONFIGS = ["etc/sysctl.d/90-hardway-lab.conf", "etc/crictl.yaml", "etc/containerd/config.toml",
           "etc/systemd/system/containerd.service", "etc/kubernetes/kubelet.yaml",
           "etc/systemd/system/kubelet.service"]


def script_yardstick(ansible_fresh: float, ansible_again: float) -> None:
    """bench/provision.sh, the same steps as site.yml in one shell script over one ssh
    connection, on a second fresh node beside the first: how far Ansible is from it."""
    from hardway.mirror import artifacts
    from hardway.mirror.store import Mirror
    from hardway.nodes.lifecycle import LocalLab
    from hardway.settings import Settings

    settings = Settings.from_env(dict(os.environ, **ENV))
    hardway("nodes", "up", "--count", "2")
    lab = LocalLab(settings, lambda _: None)
    node1, node2 = lab.load()[:2]
    index = Mirror(settings.mirror).index()
    arch = artifacts.host_arch()
    lines = []
    versions = artifacts.pinned_versions()
    for component in artifacts.NODE_COMPONENTS:  # what site.yml installs on a lab node
        version = versions[component]
        art = artifacts.artifact(component, arch, version)
        members = " ".join(f"{m}={d}" for m, d in INSTALLS[component].items())
        digest = index["checksums"][component][arch][version].removeprefix("sha256:")
        lines.append(f"{art.local_path} {digest} {art.kind} {members}")
    for name, entry in index["images"].items():
        if entry["file"].endswith(f"-{arch}.tar"):
            lines.append(f"{entry['file']} {entry['sha256']} image {name}")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp)
        taken = subprocess.run(["ssh", *lab.ssh_args(), f"root@{node1.address}",
                                f"tar -C / -cf - {' '.join(CONFIGS)}"], capture_output=True, check=True)
        (bundle / "configs").mkdir()
        subprocess.run(["tar", "-C", str(bundle / "configs"), "-xf", "-"], input=taken.stdout, check=True)
        (bundle / "artifacts").write_text("\n".join(lines) + "\n")
        shutil.copy(REPO / "bench/provision.sh", bundle / "provision.sh")
        packed = subprocess.run(["tar", "-C", tmp, "-cf", "-", "."], capture_output=True, check=True).stdout
    remote = (f"rm -rf /tmp/hw && mkdir /tmp/hw && tar -C /tmp/hw -xf - && bash /tmp/hw/provision.sh "
              f"{settings.mirror_url} /tmp/hw/configs /tmp/hw/artifacts")
    for label, ansible in (("fresh node", ansible_fresh), ("second run", ansible_again)):
        start = time.monotonic()
        result = subprocess.run(["ssh", *lab.ssh_args(), f"root@{node2.address}", remote],
                                input=packed, capture_output=True)
        seconds = time.monotonic() - start
        said = result.stdout.decode(errors="replace").strip().splitlines()
        if result.returncode != 0:
            sys.exit(f"provision.sh failed on {node2.name}: {result.stderr.decode(errors='replace')[-2000:]}")
        figure(f"shell script, one ssh, {label} ({said[-1] if said else ''})", f"{seconds:.1f} s")
        figure(f"  Ansible / script, {label}", f"{ansible / seconds:.1f}x")


def figure(label: str, value: str) -> None:
    print(f"{label:<58} {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold-image", action="store_true")
    parser.add_argument("--cold-kubelet", action="store_true")
    options = parser.parse_args()

    hardway("nodes", "down", check=False)
    seconds, _ = hardway("mirror", "build")
    figure("mirror build, warm", f"{seconds:.1f} s")
    if options.cold_image:
        scratch = tempfile.mkdtemp(prefix="hardway-bench-cache-")
        seconds, _ = run(str(BIN / "python"), "-c",
                         "from hardway.nodes import image; from hardway.settings import Settings;"
                         "image.base_image(Settings.from_env(), print)",
                         env={"HARDWAY_CACHE": scratch})
        figure("base image, cold (debootstrap)", f"{seconds:.1f} s, {du(scratch)}")
        shutil.rmtree(scratch)
    seconds, _ = run(str(BIN / "python"), "-c",
                     "from hardway.nodes import image; from hardway.settings import Settings;"
                     "image.base_image(Settings.from_env(), print)")
    figure("base image, warm", f"{seconds:.2f} s")

    for count in (1, 3):
        nodes_up, _ = hardway("up", "--count", str(count), "--no-site")
        figure(f"nodes up --count {count} (with mirror check and serve)", f"{nodes_up:.1f} s")
        seconds, _ = hardway("nodes", "up", "--count", str(count))
        figure(f"nodes up --count {count} again (idempotent)", f"{seconds:.1f} s")
        fresh, out = playbook()
        changed = re.findall(r"changed=(\d+)", out)
        figure(f"site.yml on {count} fresh node(s)", f"{fresh:.1f} s (changed {changed})")
        figure(f"hardway up, {count} fresh node(s) (the two above)", f"{nodes_up + fresh:.1f} s")
        seconds, out = hardway("up")
        figure(f"hardway up on the {count} provisioned, healthy node(s)", f"{seconds:.1f} s")
        again, out = playbook()
        changed = re.findall(r"changed=(\d+)", out)
        figure(f"site.yml again on {count} node(s) (second converge)", f"{again:.1f} s (changed {changed})")
        seconds, out = playbook("--check")
        changed = re.findall(r"changed=(\d+)", out)
        figure(f"site.yml --check on {count} node(s)", f"{seconds:.1f} s (changed {changed})")
        if count == 1:
            script_yardstick(fresh, again)
        if count == 3:
            figure("disk per node (overlay upper + containerd dir)",
                   ", ".join(f"{p.name} {du(str(p))}"
                             for p in sorted(Path(ENV['HARDWAY_STATE'], 'nodes').iterdir())))
            time.sleep(20)
            figure("memory per idle node (kubelet + containerd)", ", ".join(node_memory_mib()))
        seconds, out = hardway("nodes", "down")
        figure(f"nodes down, {count} node(s)", f"{seconds:.1f} s")

    if options.cold_kubelet:
        from hardway.mirror import artifacts, build
        from hardway.settings import Settings

        scratch = tempfile.mkdtemp(prefix="hardway-bench-go-")
        settings = Settings.from_env({"HARDWAY_CACHE": scratch})
        os.environ["GOCACHE"] = str(Path(scratch, "gocache"))
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.monotonic()
        build.build_component(settings, "kubelet", artifacts.pinned_versions()["kubelet"],
                              artifacts.host_arch(), lambda _: None)
        elapsed = time.monotonic() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        figure("kubelet build, empty Go build cache", f"{elapsed / 60:.1f} min")
        figure("kubelet build, peak memory of one child (the linker)",
               f"{max(peak, before) / 2**20:.2f} GiB")
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
