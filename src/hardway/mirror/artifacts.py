"""What the pinned upstream artifacts are and where they live.

The single source is the Ansible content: `roles/download/vars/main/` for paths,
checksum formats and official checksums, each component role's defaults for its pinned version. Python reads
the same files, so the mirror and the roles cannot disagree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from hardway.settings import REPO, HardwayError

# What every lab node runs, built and synced by default.
NODE_COMPONENTS = ("kubelet", "containerd", "runc", "cni_plugins", "crictl")
# The control plane: built (20+ minutes cold) only when asked for, with --control-plane or
# HARDWAY_CONTROL_PLANE=1.
CONTROL_PLANE_COMPONENTS = ("etcd", "kube_apiserver", "kube_controller_manager", "kube_scheduler",
                            "kubectl")
COMPONENTS = NODE_COMPONENTS + CONTROL_PLANE_COMPONENTS
# The role and default that pin each component's version: its own role's <role>_version,
# except kubectl, which the API server's role installs beside it.
VERSION_SOURCES = {**{c: (c, f"{c}_version") for c in COMPONENTS},
                   "kubectl": ("kube_apiserver", "kube_apiserver_kubectl_version")}
ARCHES = ("amd64", "arm64")


DOWNLOAD_VARS = REPO / "roles" / "download" / "vars" / "main"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


@dataclass(frozen=True)
class Artifact:
    component: str
    version: str
    arch: str
    base: str
    path: str
    checksum_path: str
    checksum_format: str
    kind: str
    files: tuple[str, ...]

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def local_path(self) -> str:
        """Path inside a mirror directory: the base name, then the official path."""
        return f"{self.base}/{self.path}"

    @property
    def local_checksum_path(self) -> str:
        return f"{self.base}/{self.checksum_path}"

    def checksum_text(self, digest: str, existing: str = "") -> str:
        """The checksum file as the project publishes it, holding `digest` for this file.

        runc publishes one file for all architectures, so an existing one is merged.
        """
        if self.checksum_format == "bare":
            return f"{digest}\n"
        lines = {
            name: line
            for line in existing.splitlines()
            if len(parts := line.split()) == 2 and (name := parts[1].lstrip("*")) != self.filename
        }
        lines[self.filename] = f"{digest}  {self.filename}"
        return "".join(f"{lines[name]}\n" for name in sorted(lines))

    def digest_from(self, checksum_text: str) -> str | None:
        """The digest a checksum file states for this artifact, or None."""
        for line in checksum_text.splitlines():
            parts = line.split()
            if self.checksum_format == "bare" and len(parts) == 1:
                return parts[0].lower()
            if len(parts) == 2 and parts[1].lstrip("*") == self.filename:
                return parts[0].lower()
        return None


def specs() -> dict:
    return _load(DOWNLOAD_VARS / "artifacts.yml")["download_artifacts"]


def wanted(control_plane: bool) -> tuple[str, ...]:
    """The components a lab needs: the node's, and the control plane's if it is on."""
    return COMPONENTS if control_plane else NODE_COMPONENTS


def pinned_versions() -> dict[str, str]:
    return {c: str(_load(REPO / "roles" / role / "defaults" / "main.yml")[variable])
            for c, (role, variable) in VERSION_SOURCES.items()}


def upstream_checksums() -> dict:
    """component -> arch -> version -> 'sha256:...', the official release checksums."""
    return _load(DOWNLOAD_VARS / "checksums.yml")["download_upstream_checksums"]


def artifact(component: str, arch: str, version: str | None = None) -> Artifact:
    spec = specs()[component]
    version = version or pinned_versions()[component]
    def render(template: str) -> str:
        return template.format(version=version, arch=arch)

    return Artifact(
        component=component,
        version=version,
        arch=arch,
        base=spec["base"],
        path=render(spec["path"]),
        checksum_path=render(spec["checksum_path"]),
        checksum_format=spec["checksum_format"],
        kind=spec["kind"],
        files=tuple(render(name) for name in spec["files"]),
    )


def pinned(arches: tuple[str, ...] = ARCHES,
           components: tuple[str, ...] = NODE_COMPONENTS) -> list[Artifact]:
    return [artifact(c, a) for c in components for a in arches]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def arch_of(machine: str) -> str:
    """The download architecture (amd64, arm64) of a machine name as `uname -m` prints it."""
    arch = _load(DOWNLOAD_VARS / "artifacts.yml")["download_arch_map"].get(machine)
    if arch is None:
        raise HardwayError(f"architecture {machine} is not supported: use amd64 or arm64")
    return arch


def host_arch() -> str:
    import platform

    return arch_of(platform.machine())
