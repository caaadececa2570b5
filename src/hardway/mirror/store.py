"""The mirror directory: artifacts at their official paths, checksum files in each
project's own format, and an index (`index.yml`) of everything it holds."""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import yaml

from hardway.files import atomic_write
from hardway.mirror import artifacts
from hardway.mirror.artifacts import Artifact, sha256_file
from hardway.settings import HardwayError

INDEX = "index.yml"
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")
# verify takes a file as known good only once it has been left alone this long.
SETTLED_NS = 2_000_000_000
REBUILD = "rebuild it with `hardway mirror build` or `hardway mirror sync`"


def inside(relpath: str) -> bool:
    """Whether a path names something inside a mirror: relative, no `..`, nothing hidden
    (atomic_write's half-written files are dotfiles too)."""
    return all(part and not part.startswith(".") and "\\" not in part and "\0" not in part
               for part in relpath.split("/"))


def index_problem(data: object) -> str | None:
    """What is wrong with an index's content, or None. Nothing in it may name a file
    outside the mirror, since verify reads and serve hands out what it names."""
    if not isinstance(data, dict) or set(data) != {"checksums", "sources", "images"}:
        return "must be a mapping of checksums, sources and images"
    if not isinstance(data["checksums"], dict):
        return "checksums must map components to architectures"
    for component, by_arch in data["checksums"].items():
        if component not in artifacts.COMPONENTS:
            return f"checksums: unknown component {component!r}"
        if not isinstance(by_arch, dict) or not set(by_arch) <= set(artifacts.ARCHES):
            return f"checksums: {component} must map {' or '.join(artifacts.ARCHES)} to versions"
        for arch, by_version in by_arch.items():
            if not isinstance(by_version, dict):
                return f"checksums: {component} {arch} must map versions to checksums"
            for version, value in by_version.items():
                if not (isinstance(version, str) and VERSION.fullmatch(version)):
                    return f"checksums: {component} {arch}: {version!r} is not a version"
                if not (isinstance(value, str) and value.startswith("sha256:")
                        and SHA256.fullmatch(value[7:])):
                    return f"checksums: {component} {version} {arch}: {value!r} is not sha256:<64 hex>"
    if not (isinstance(data["sources"], dict)
            and all(isinstance(v, str) for v in data["sources"].values())):
        return "sources must map components to where they came from"
    if not isinstance(data["images"], dict):
        return "images must map image names to their file and sha256"
    for name, entry in data["images"].items():
        if not (isinstance(entry, dict) and set(entry) == {"file", "sha256"}):
            return f"images: {name!r} must have a file and a sha256"
        if not (isinstance(entry["file"], str) and inside(entry["file"])):
            return f"images: {name!r} names {entry['file']!r}, not a path inside the mirror"
        if not (isinstance(entry["sha256"], str) and SHA256.fullmatch(entry["sha256"])):
            return f"images: {name!r} has sha256 {entry['sha256']!r}, not 64 hex digits"
    return None


@dataclass
class Problem:
    path: str
    reason: str


class Mirror:
    def __init__(self, root: Path):
        self.root = root

    @property
    def index_path(self) -> Path:
        return self.root / INDEX

    def index(self) -> dict:
        """The index, checked: a malformed one is refused with what is wrong and the fix."""
        if not self.index_path.exists():
            return {"checksums": {}, "sources": {}, "images": {}}
        try:
            data = yaml.safe_load(self.index_path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            self._malformed(f"is not valid YAML ({getattr(exc, 'problem', None) or exc}{where})")
        except (OSError, UnicodeDecodeError) as exc:
            self._malformed(f"cannot be read ({getattr(exc, 'strerror', None) or exc})")
        problem = index_problem(data)
        if problem:
            self._malformed(problem)
        return data

    def _malformed(self, problem: str) -> NoReturn:
        raise HardwayError(f"{self.index_path}: {problem}; {REBUILD}")

    def _save(self, index: dict) -> None:
        atomic_write(self.index_path, yaml.safe_dump(index, sort_keys=True).encode())

    # -- stamps: what made each file, so a warm build does no work ---------------------

    def _stamp_path(self, relpath: str) -> Path:
        return self.root / ".stamps" / (relpath.replace("/", "%") + ".json")

    def fresh(self, relpaths: list[str], key: str) -> bool:
        """Were these files made from inputs whose key is `key`, and are they untouched
        since (same size and modification time as when they were stamped)?"""
        for relpath in relpaths:
            try:
                stamp = json.loads(self._stamp_path(relpath).read_text())
                stat = (self.root / relpath).stat()
            except (OSError, ValueError):
                return False
            if stamp != {"key": key, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
                return False
        return True

    def stamp(self, relpaths: list[str], key: str) -> None:
        """Record that these files, as they are now, were made from inputs keyed `key`."""
        for relpath in relpaths:
            stat = (self.root / relpath).stat()
            atomic_write(self._stamp_path(relpath), json.dumps(
                {"key": key, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}).encode())

    def put(self, art: Artifact, data: bytes, source: str) -> str:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        target = self.root / art.local_path
        if not (target.exists() and sha256_file(target) == digest):
            atomic_write(target, data, 0o755 if art.kind == "binary" else 0o644)
        checksum = self.root / art.local_checksum_path
        existing = checksum.read_text() if checksum.exists() else ""
        text = art.checksum_text(digest, existing)
        if text != existing:
            atomic_write(checksum, text.encode())
        index = self.index()
        recorded = index["checksums"].setdefault(art.component, {}).setdefault(art.arch, {})
        if recorded.get(art.version) != f"sha256:{digest}" or \
                index["sources"].get(art.component) != source:
            recorded[art.version] = f"sha256:{digest}"
            index["sources"][art.component] = source
            self._save(index)
        return digest

    def put_image(self, name: str, relpath: str, data: bytes) -> str:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        target = self.root / relpath
        if not (target.exists() and sha256_file(target) == digest):
            atomic_write(target, data)
        index = self.index()
        entry = {"file": relpath, "sha256": digest}
        if index["images"].get(name) != entry:
            index["images"][name] = entry
            self._save(index)
        return digest

    def artifacts(self) -> list[Artifact]:
        return [artifacts.artifact(component, arch, str(version))
                for component, by_arch in sorted(self.index()["checksums"].items())
                for arch, by_version in sorted(by_arch.items())
                for version in sorted(by_version)]

    def verify(self, every_byte: bool = True) -> tuple[int, list[Problem]]:
        """Recheck every file the index names: (files checked, problems found). Without
        every_byte, a file found good before and untouched since (same inode, size,
        modification and change time) is not hashed again: `hardway up` checks the mirror
        this way on every run, `hardway mirror verify` reads every byte."""
        index = self.index()
        problems: list[Problem] = []
        checked = 0
        if not self.index_path.exists():
            return 0, [Problem(str(self.index_path), "no mirror here: run `hardway mirror build` "
                               "or `hardway mirror sync` first")]
        known = {} if every_byte else self._verified()
        good: dict[str, dict] = {}

        def digest_problem(relpath: str, want: str, what: str = "") -> str | None:
            path = self.root / relpath
            if not path.is_file():
                return "missing or not a file" + what
            stat = path.stat()
            identity = {"sha256": want, "dev": stat.st_dev, "ino": stat.st_ino,
                        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                        "ctime_ns": stat.st_ctime_ns}
            if known.get(relpath) != identity and (have := sha256_file(path)) != want:
                return f"sha256 {have} but the index says {want}"
            # A file changed in the last seconds may change again within the same clock
            # tick, unseen: it is read again next time.
            if time.time_ns() - stat.st_ctime_ns > SETTLED_NS:
                good[relpath] = identity
            return None

        for art in self.artifacts():
            checked += 1
            want = index["checksums"][art.component][art.arch][art.version].split(":", 1)[1]
            if problem := digest_problem(art.local_path, want):
                problems.append(Problem(art.local_path, problem))
                continue
            checksum = self.root / art.local_checksum_path
            stated = art.digest_from(checksum.read_text()) if checksum.is_file() else None
            if stated != want:
                problems.append(Problem(art.local_checksum_path,
                                        f"states {stated or 'nothing'} for {art.filename}, "
                                        f"expected {want}"))
        for name, entry in sorted(index["images"].items()):
            checked += 1
            if problem := digest_problem(entry["file"], entry["sha256"], f" (image {name})"):
                problems.append(Problem(entry["file"], problem))
        if good != known:
            with contextlib.suppress(OSError):  # a read-only mirror is checked in full each time
                atomic_write(self._verified_path, json.dumps(good, sort_keys=True).encode())
        return checked, problems

    @property
    def _verified_path(self) -> Path:
        return self.root / ".stamps" / "verified.json"

    def _verified(self) -> dict:
        """The files the last verify found good, as they were then."""
        try:
            data = json.loads(self._verified_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
