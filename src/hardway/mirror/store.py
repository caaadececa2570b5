"""The mirror directory: artifacts at their official paths, checksum files in each
project's own format, and an index (`index.yml`) of everything it holds."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from hardway.mirror import artifacts
from hardway.mirror.artifacts import Artifact, sha256_file

INDEX = "index.yml"


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file so readers see the old or the new content, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        if not self.index_path.exists():
            return {"checksums": {}, "sources": {}, "images": {}}
        data = yaml.safe_load(self.index_path.read_text()) or {}
        for key in ("checksums", "sources", "images"):
            data.setdefault(key, {})
        return data

    def _save(self, index: dict) -> None:
        atomic_write(self.index_path, yaml.safe_dump(index, sort_keys=True).encode())

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

    def verify(self) -> tuple[int, list[Problem]]:
        """Recheck every file the index names: (files checked, problems found)."""
        index = self.index()
        problems: list[Problem] = []
        checked = 0
        if not self.index_path.exists():
            return 0, [Problem(str(self.index_path), "no mirror here: run `hardway mirror build` "
                               "or `hardway mirror sync` first")]
        for art in self.artifacts():
            checked += 1
            want = index["checksums"][art.component][art.arch][art.version].split(":", 1)[1]
            path = self.root / art.local_path
            if not path.exists():
                problems.append(Problem(art.local_path, "missing"))
                continue
            have = sha256_file(path)
            if have != want:
                problems.append(Problem(art.local_path, f"sha256 {have} but the index says {want}"))
            checksum = self.root / art.local_checksum_path
            stated = art.digest_from(checksum.read_text()) if checksum.exists() else None
            if stated != want:
                problems.append(Problem(art.local_checksum_path,
                                        f"states {stated or 'nothing'} for {art.filename}, "
                                        f"expected {want}"))
        for name, entry in sorted(index["images"].items()):
            checked += 1
            path = self.root / entry["file"]
            if not path.exists():
                problems.append(Problem(entry["file"], f"missing (image {name})"))
            elif (have := sha256_file(path)) != entry["sha256"]:
                problems.append(Problem(entry["file"],
                                        f"sha256 {have} but the index says {entry['sha256']}"))
        return checked, problems
