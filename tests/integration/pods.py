"""Static pods for the integration tests, written to a node's manifest directory."""

from __future__ import annotations

from hardway.mirror.images import image_names

MANIFESTS = "/etc/kubernetes/manifests"


def manifest(name: str, image: str, host_network: bool, command: list[str] | None = None) -> str:
    lines = [
        "apiVersion: v1", "kind: Pod", "metadata:", f"  name: {name}", "spec:",
        f"  hostNetwork: {'true' if host_network else 'false'}", "  containers:",
        f"  - name: {name}", f"    image: {image}", "    imagePullPolicy: Never",
    ]
    if command:
        lines.append(f"    command: [{', '.join(repr(c) for c in command)}]")
    return "\n".join(lines) + "\n"


def nginx(name: str = "web", host_network: bool = True) -> str:
    return manifest(name, image_names()["nginx"], host_network)


def busybox(name: str, command: list[str], host_network: bool = True) -> str:
    # hostNetwork by default: site.yml leaves the node without a CNI config.
    return manifest(name, image_names()["busybox"], host_network, command)


def write(lab, node: str, name: str, text: str) -> None:
    lab.ok(node, f"cat > {MANIFESTS}/{name}.yaml <<'EOF'\n{text}EOF")


def remove(lab, node: str, name: str) -> None:
    lab.ok(node, f"rm -f {MANIFESTS}/{name}.yaml")
