"""Jinja filters for the warm path of the download and lab_images roles: whether a converge
still has to fetch or install anything, judged from one `find` of the host."""

from __future__ import annotations

import hashlib
import json
from os.path import normpath
from urllib.parse import urlsplit

RECORD = "installed-"


def lab_download_record(found: list[dict], install: dict[str, str], cache_dir: str,
                        archive: str, kind: str) -> str:
    """Path of the record that these exact files were installed from the verified artifact
    cached in `cache_dir`: <cache_dir>/installed-<digest of their identities>, or "" when one
    of them is missing or a destination is not root's with mode 0755.

    A file's identity is its path, size, inode, ctime, owner and mode (from `find` without
    checksums), so nothing is hashed on the warm path, yet any write, replacement, chmod or
    chown of a destination, of the cached archive or of an unpacked member changes it: the
    record no longer matches and the role takes the verified way again."""
    by_path = {normpath(f["path"]): f for f in found}
    dests = [normpath(dest) for dest in install.values()]
    needed = ([normpath(archive)] + [normpath(f"{cache_dir}/files/{m}") for m in install]
              if kind == "tarball" else []) + dests
    if any(path not in by_path for path in needed):
        return ""
    if any((by_path[d].get("uid"), by_path[d].get("gid"), by_path[d].get("mode")) != (0, 0, "0755")
           for d in dests):
        return ""
    identity = [[p, *(by_path[p].get(k) for k in ("size", "inode", "ctime", "uid", "gid", "mode"))]
                for p in needed]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]
    return normpath(f"{cache_dir}/{RECORD}{digest}")


def lab_download_records(found: list[dict], cache_dir: str) -> list[str]:
    """Every install record `find` saw in `cache_dir`."""
    prefix = normpath(f"{cache_dir}/{RECORD}")
    return [normpath(f["path"]) for f in found if normpath(f["path"]).startswith(prefix)]


def lab_images_archive(name: str, archives: dict[str, dict]) -> str:
    """File name of image `name`'s archive in a cache: <name>-<sha256[:12]>.tar."""
    return f"{name}-{archives[name]['sha256'][:12]}.tar"


def lab_images_unverified(found: list[dict], archives: dict[str, dict], names: list[str],
                          cache_dir: str) -> list[str]:
    """Names of the image archives (archives: name -> {url, sha256}) that are not in the host's
    cache, as <cache_dir>/<name>-<sha256[:12]>.tar, with their sha256."""
    sums = {normpath(f["path"]): f.get("checksum") for f in found}
    return [name for name in names
            if sums.get(normpath(f"{cache_dir}/{lab_images_archive(name, archives)}"))
            != archives[name]["sha256"]]


def lab_one_per_origin(urls: list[str]) -> list[str]:
    """The first of `urls` for each scheme://host:port: one request tells whether a host
    answers, however many bases it serves (a mirror serves them all)."""
    seen: dict[tuple[str, str], str] = {}
    for url in urls:
        parts = urlsplit(str(url))
        seen.setdefault((parts.scheme, parts.netloc), str(url))
    return list(seen.values())


class FilterModule:
    def filters(self):
        return {"lab_download_record": lab_download_record,
                "lab_download_records": lab_download_records,
                "lab_images_archive": lab_images_archive,
                "lab_one_per_origin": lab_one_per_origin,
                "lab_images_unverified": lab_images_unverified}
