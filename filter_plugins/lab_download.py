"""Jinja filters for the download role: what each requested artifact is (its URL, checksum and
cache folder), and the warm path: whether a converge still has to fetch or install any of
them, judged from one `find` of the host for all of them."""

from __future__ import annotations

import hashlib
import json
from os.path import dirname, normpath
from urllib.parse import urlsplit

RECORD = "installed-"


def lab_download_record(found: list[dict], install: dict[str, str], cache_dir: str,
                        archive: str, kind: str, mode: str = "0755") -> str:
    """Path of the record that these exact files were installed from the verified artifact
    cached in `cache_dir`: <cache_dir>/installed-<digest of their identities>, or "" when one
    of them is missing or a destination is not root's with `mode`.

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
    if any((by_path[d].get("uid"), by_path[d].get("gid"), by_path[d].get("mode")) != (0, 0, mode)
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


def lab_one_per_origin(urls: list[str]) -> list[str]:
    """The first of `urls` for each scheme://host:port: one request tells whether a host
    answers, however many bases it serves (a mirror serves them all)."""
    seen: dict[tuple[str, str], str] = {}
    for url in urls:
        parts = urlsplit(str(url))
        seen.setdefault((parts.scheme, parts.netloc), str(url))
    return list(seen.values())


def lab_download_plan(requests: list[dict], artifacts: dict[str, dict], checksums: dict,
                      bases: dict[str, str], arch: str, arches: list[str], cache_dir: str,
                      controller_cache_dir: str) -> list[dict]:
    """Each request ({component, version, install, and optionally url, checksum, mode}) made
    concrete for a host of architecture `arch`: its URL and pinned checksum ("" when none is
    pinned), its cache folder <cache_dir>/<component>/<version>/<arch>/<checksum[:12]> and
    the cached file's path there, and, for a fetch on the controller (download_push), the
    URL, checksum and controller path for each architecture of the play.

    A request with a url and checksum (an image archive from a mirror) is one file,
    installed as a binary is; every other request is a release of download_artifacts."""
    plan = []
    for request in requests:
        component, version = str(request["component"]), str(request["version"])
        if request.get("url"):
            kind = "binary"
            sources = {a: (str(request["url"]), str(request.get("checksum", ""))) for a in {arch, *arches}}
        else:
            spec = artifacts[component]
            kind = spec["kind"]
            base = str(bases[spec["base"]]).rstrip("/")
            path = str(spec["path"]).replace("{version}", version)
            sources = {a: (f"{base}/{path.replace('{arch}', a)}",
                           str(checksums.get(component, {}).get(a, {}).get(version, "")))
                       for a in {arch, *arches}}
        url, checksum = sources[arch]
        folder = normpath(f"{cache_dir}/{component}/{version}/{arch}/{checksum[7:19]}")
        filename = url.rsplit("/", 1)[-1]
        plan.append({
            "component": component, "version": version, "kind": kind,
            "install": dict(request.get("install") or {}), "mode": str(request.get("mode", "0755")),
            "url": url, "checksum": checksum, "filename": filename, "dir": folder,
            "archive": f"{folder}/{filename}",
            "controller": {a: {"url": u, "checksum": c,
                               "path": normpath(f"{controller_cache_dir}/{c[7:19]}/{u.rsplit('/', 1)[-1]}")}
                           for a, (u, c) in sorted(sources.items())},
        })
    return plan


# A cached file sits four folders below the cache: <component>/<version>/<arch>/<checksum>.
CACHE_LEVELS = 4


def lab_download_probe(plan: list[dict], cache_dir: str) -> list[str]:
    """argv of one GNU find on the host that lists, for the whole plan, every file the warm
    path looks at (records, cached files, unpacked members, destinations) with its identity;
    lab_download_found reads its output. Folders not there yet are reported and skipped."""
    folders = [normpath(cache_dir)] + sorted({dirname(normpath(dest)) for item in plan
                                              for dest in item["install"].values()})
    names = {f"{RECORD}*"}
    for item in plan:
        names.add(item["filename"])
        names.update(member.rsplit("/", 1)[-1] for member in item["install"])
        names.update(dest.rsplit("/", 1)[-1] for dest in item["install"].values())
    # Deep enough for an unpacked member below the cache: <4 folders>/files/bin/containerd.
    members = [len(m.split("/")) for item in plan if item["kind"] == "tarball" for m in item["install"]]
    depth = CACHE_LEVELS + 1 + max(members, default=0)
    matches = [arg for name in sorted(names) for arg in ("-o", "-name", name)][1:]
    return ["find", *folders, "-maxdepth", str(depth), "-type", "f", "(", *matches, ")",
            "-printf", PROBE_FORMAT]


PROBE_FORMAT = "%p\t%s\t%i\t%C@\t%U\t%G\t%m\n"


def lab_download_found(stdout: str) -> list[dict]:
    """lab_download_probe's output as find-module results: path, size, inode, ctime, uid,
    gid and mode ("0755")."""
    found = []
    for line in str(stdout).splitlines():
        fields = line.split("\t")
        if len(fields) != 7:
            continue
        path, size, inode, ctime, uid, gid, mode = fields
        found.append({"path": path, "size": int(size), "inode": int(inode), "ctime": ctime,
                      "uid": int(uid), "gid": int(gid), "mode": mode.rjust(4, "0")})
    return found


def lab_download_stale(plan: list[dict], found: list[dict], push: bool) -> list[dict]:
    """The items of the plan to fetch and install: those whose record is missing or no longer
    matches the files (all of them with download_push: the files are on the controller)."""
    if push:
        return list(plan)
    paths = {normpath(f["path"]) for f in found}
    stale = []
    for item in plan:
        record = lab_download_record(found, item["install"], item["dir"], item["archive"],
                                     item["kind"], item["mode"])
        if record == "" or record not in paths:
            stale.append(item)
    return stale


def lab_images_requests(names: list[str], images: dict[str, str], archives: dict[str, dict],
                        cache_dir: str) -> list[dict]:
    """Download requests for the offline image archives (archives: name -> {url, sha256}),
    each installed as <cache_dir>/<name>.tar for `ctr images import`; versioned by the tag
    of its image name (images: name -> "lab.local/nginx:1.22")."""
    return [{"component": f"{name}_image", "version": str(images[name]).rsplit(":", 1)[-1],
             "url": archives[name]["url"], "checksum": f"sha256:{archives[name]['sha256']}",
             "install": {name: f"{cache_dir}/{name}.tar"}, "mode": "0644"}
            for name in names]


class FilterModule:
    def filters(self):
        return {"lab_download_record": lab_download_record,
                "lab_download_records": lab_download_records,
                "lab_download_plan": lab_download_plan,
                "lab_download_probe": lab_download_probe,
                "lab_download_found": lab_download_found,
                "lab_download_stale": lab_download_stale,
                "lab_images_requests": lab_images_requests,
                "lab_one_per_origin": lab_one_per_origin}
