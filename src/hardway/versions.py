"""`hardway versions`: which releases have their official checksums pinned, and pinning one.

The pinned map is roles/download/vars/main/checksums.yml (component -> arch -> version ->
"sha256:..."). A version is pinned only when its project's own checksum file, at its
official URL, could be read for every architecture; otherwise nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hardway.files import atomic_write
from hardway.mirror import artifacts, sync
from hardway.settings import HardwayError, UsageError

CHECKSUMS = artifacts.DOWNLOAD_VARS / "checksums.yml"
KEY = "download_upstream_checksums"
VERSION = re.compile(r"\d+\.\d+\.\d+")
HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Row:
    component: str
    default: str
    pinned: dict[str, list[str]]  # arch -> versions with a checksum, oldest first

    @property
    def ready(self) -> bool:
        """The default version can be verified on every architecture."""
        return all(self.default in self.pinned[arch] for arch in artifacts.ARCHES)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def load(path: Path | None = None) -> tuple[str, dict]:
    """The file's comment header (kept verbatim) and its map."""
    text = (path or CHECKSUMS).read_text()
    start = text.find(f"\n{KEY}:")
    header = text[:start + 1] if start >= 0 else ""
    return header, (yaml.safe_load(text) or {}).get(KEY) or {}


def render(header: str, checksums: dict) -> str:
    """The map in the file's layout: components in the roles' order, arches and versions
    sorted, so a diff shows only what was added."""
    order = [c for c in artifacts.COMPONENTS if c in checksums] + sorted(
        set(checksums) - set(artifacts.COMPONENTS))
    lines = [f"{KEY}:"]
    for component in order:
        arches = sorted(arch for arch, by_version in checksums[component].items() if by_version)
        if arches:  # an architecture with no versions is left out, and so is its component
            lines.append(f"  {component}:")
        for arch in arches:
            lines.append(f"    {arch}:")
            by_version = checksums[component][arch]
            for version in sorted(by_version, key=lambda v: _key(str(v))):
                lines.append(f'      {version}: "{by_version[version]}"')
    return header + "\n".join(lines) + "\n"


def table(path: Path | None = None) -> list[Row]:
    _, checksums = load(path)
    defaults = artifacts.pinned_versions()
    return [Row(component, defaults[component],
                {arch: sorted((str(v) for v in checksums.get(component, {}).get(arch) or {}), key=_key)
                 for arch in artifacts.ARCHES})
            for component in artifacts.COMPONENTS]


def published(component: str, version: str, base: str | None = None) -> dict[str, str]:
    """arch -> "sha256:<hex>", read from the project's published checksum files."""
    found = {}
    for arch in artifacts.ARCHES:
        art = artifacts.artifact(component, arch, version)
        url = f"{(base or sync.UPSTREAM[art.base]).rstrip('/')}/{art.checksum_path}"
        digest = art.digest_from(sync.fetch(url).decode("utf-8", errors="replace"))
        if digest is None or not HEX64.fullmatch(digest):
            raise HardwayError(f"{url} states no sha256 for {art.filename}; nothing was pinned")
        found[arch] = f"sha256:{digest}"
    return found


def add(component: str, version: str, base: str | None = None,
        path: Path | None = None) -> dict[str, str]:
    """Pin `component` `version` for every architecture, or change nothing."""
    if component not in artifacts.COMPONENTS:
        raise UsageError(f"unknown component {component}: choose from {', '.join(artifacts.COMPONENTS)}")
    version = version.removeprefix("v")
    if not VERSION.fullmatch(version):
        raise UsageError(f"version {version} must look like 1.2.3")
    found = published(component, version, base)
    header, checksums = load(path)
    by_arch = checksums.setdefault(component, {})
    for arch, value in found.items():
        pinned = (by_arch.get(arch) or {}).get(version)
        if pinned is not None and pinned != value:
            raise HardwayError(f"{component} {version} ({arch}) is pinned as {pinned}, but the "
                               f"published file now says {value}; nothing was changed: find out "
                               "why before replacing it by hand")
    for arch, value in found.items():
        by_arch[arch] = {**(by_arch.get(arch) or {}), version: value}
    atomic_write(path or CHECKSUMS, render(header, checksums).encode())
    return found
