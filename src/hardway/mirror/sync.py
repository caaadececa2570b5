"""Fill the mirror from the official release URLs (for a connected instructor machine).

Every artifact is checked against the checksum pinned in the repository before it
enters the mirror; a pinned version without a checksum is refused before any download.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable

from hardway.mirror import artifacts
from hardway.mirror.store import Mirror
from hardway.settings import HardwayError, Settings, UsageError

UPSTREAM = {"kubernetes": "https://dl.k8s.io", "github": "https://github.com"}

Log = Callable[[str], None]


def expected(checksums: dict, art: artifacts.Artifact) -> str:
    value = checksums.get(art.component, {}).get(art.arch, {}).get(art.version)
    if not value:
        raise UsageError(
            f"no upstream checksum is pinned for {art.component} {art.version} ({art.arch}): add "
            f"it to roles/download/vars/main/checksums.yml from the project's official checksum file "
            f"({art.checksum_path})")
    algo, _, digest = str(value).partition(":")
    if algo != "sha256" or len(digest) != 64:
        raise UsageError(f"checksum for {art.component} {art.version} ({art.arch}) must look like "
                         f"sha256:<64 hex digits>, not {value!r}")
    return digest.lower()


def fetch(url: str, timeout: float = 60) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise HardwayError(f"cannot download {url}: {getattr(exc, 'reason', exc)}; check the "
                           "network or the base URL") from None


def sync(settings: Settings, log: Log, bases: dict[str, str] | None = None,
         arches: tuple[str, ...] = artifacts.ARCHES, checksums: dict | None = None) -> Mirror:
    bases = {**UPSTREAM, **(bases or {})}
    checksums = artifacts.upstream_checksums() if checksums is None else checksums
    wanted = artifacts.pinned(arches)
    digests = {id(a): expected(checksums, a) for a in wanted}  # all pinned, or nothing starts
    mirror = Mirror(settings.mirror)
    mirror.index()  # a malformed index is refused now, not after the downloads
    for art in wanted:
        url = f"{bases[art.base].rstrip('/')}/{art.path}"
        log(f"{art.component} {art.version} {art.arch}: {url}")
        data = fetch(url)
        have = hashlib.sha256(data).hexdigest()
        if have != digests[id(art)]:
            raise HardwayError(f"{url} has sha256 {have}, but {digests[id(art)]} is pinned: the "
                               "download is corrupt or not the official file; nothing was stored")
        mirror.put(art, data, source="upstream")
    return mirror
