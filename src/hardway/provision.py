"""`hardway up`: local nodes, the mirror served to them, site.yml, and a health check."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from hardway import playbook
from hardway.children import tool
from hardway.mirror import artifacts, build, images, serve
from hardway.mirror.store import Mirror
from hardway.nodes import image
from hardway.nodes.lifecycle import MIRROR_VARS, LocalLab, Node, check_count
from hardway.settings import REPO, HardwayError, Settings

Log = Callable[[str], None]
Show = Callable[[playbook.Progress], None]


def mirror_vars(mirror: Mirror, url: str) -> dict:
    """Inventory variables that point the roles at a mirror served at url, and its checksums."""
    index = mirror.index()
    url = url.rstrip("/")
    arch = artifacts.host_arch()
    # images/<key>-<arch>.tar, keyed as the roles' lab_images_local is (pause, nginx, ...)
    archives = {
        Path(entry["file"]).name.removesuffix(f"-{arch}.tar"):
            {"url": f"{url}/{entry['file']}", "sha256": entry["sha256"]}
        for entry in index["images"].values() if entry["file"].endswith(f"-{arch}.tar")
    }
    return {
        "download_base_urls": {"kubernetes": f"{url}/kubernetes", "github": f"{url}/github"},
        "download_checksums": index["checksums"],
        "lab_images_offline": True,
        "lab_images_archives": archives,
        "containerd_sandbox_image": images.image_names()["pause"],
    }


def write_mirror_vars(settings: Settings, mirror: Mirror) -> Path:
    path = settings.inventory / MIRROR_VARS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by `hardway up`: the roles fetch from this host's mirror.\n" +
                    yaml.safe_dump(mirror_vars(mirror, settings.mirror_url), sort_keys=True))
    return path


def provision(settings: Settings, names: list[str], control_plane_names: list[str], show: Show,
              log: Log) -> None:
    """site.yml on the lab's nodes, its progress shown; one line naming the fix if it fails."""
    command = [tool("ansible-playbook"), "-i", str(settings.inventory / "hosts.yml"),
               str(REPO / "site.yml")]
    progress, output = playbook.run(command, hosts=names,
                                    stages=playbook.site_stages(settings.control_plane),
                                    control_plane_hosts=tuple(control_plane_names),
                                    state=settings.state / "provision", kind="site", show=show,
                                    log=log, what=f"provisioning {len(names)} node(s) with site.yml")
    failed = playbook.first_failure(progress)
    if failed:
        raise HardwayError(f"site.yml: {failed}; Ansible's output is in {output}. "
                           "Fix the cause and run `hardway up` again: it picks up where it stopped")


@dataclass
class Health:
    node: str
    ok: bool
    detail: str


def health(lab: LocalLab, node: Node, deadline: float = 60) -> Health:
    """containerd answers, the kubelet is healthy, and the node runs the pinned kubelet."""
    probe = ("systemctl is-active containerd kubelet && "
             "curl -fsS http://127.0.0.1:10248/healthz && echo && "
             "/usr/local/bin/kubelet --version && crictl --timeout 5s info >/dev/null && echo cri-ok")
    end = time.monotonic() + deadline
    last = ""
    while time.monotonic() < end:
        result = lab.ssh(node, probe)
        last = (result.stdout + result.stderr).strip()
        if result.returncode == 0 and "cri-ok" in result.stdout:
            version = next((line for line in result.stdout.splitlines()
                            if line.startswith("Kubernetes ")), "")
            return Health(node.name, True, f"containerd and kubelet up, {version}")
        time.sleep(1)
    return Health(node.name, False, last.splitlines()[-1] if last else "no answer")


def up(settings: Settings, count: int | None, log: Log, show: Show, site: bool = True,
       system: str = image.DEFAULT_SYSTEM, login: str = "root") -> list[Health]:
    check_count(count)  # before minutes of building, not after
    mirror = build.prepare(settings, log, artifacts.wanted(settings.control_plane), verify=True)
    lab = LocalLab(settings, log)
    nodes = lab.up(count, system, login)
    write_mirror_vars(settings, mirror)
    log(f"serving the mirror at {serve.start_background(settings)}")
    if not site:
        return []
    provision(settings, [node.name for node in nodes],
              [node.name for node in lab.control_plane_nodes(nodes)], show, log)
    return [health(lab, node) for node in nodes]
