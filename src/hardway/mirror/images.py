"""The offline lab images: pause, busybox and nginx, made from Debian packages on the
host and our own pause program, as one-layer OCI archives that
`ctr -n k8s.io images import` accepts. Bytes are deterministic for the same inputs."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import yaml

from hardway.children import run
from hardway.mirror import artifacts
from hardway.mirror.store import Mirror
from hardway.settings import REPO, HardwayError, Settings

DATA = Path(__file__).resolve().parents[1] / "data"
Log = Callable[[str], None]

NGINX_CONF = """\
# The lab's nginx: one server on port 80, logs to the container's output.
daemon off;
user nobody nogroup;
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr notice;
events { worker_connections 256; }
http {
    access_log /dev/stdout;
    client_body_temp_path /tmp/body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    default_type text/html;
    server {
        listen 80;
        root /usr/share/nginx/html;
    }
}
"""

INDEX_HTML = """\
<!DOCTYPE html>
<html><head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1>
<p>Served by the hardway-lab nginx image.</p></body></html>
"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def image_names() -> dict[str, str]:
    defaults = yaml.safe_load((REPO / "roles/lab_images/defaults/main.yml").read_text())
    return defaults["lab_images_local"]


class Rootfs:
    """Files of an image's single layer, collected in memory with fixed metadata."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, bytes | str, int]] = {}

    def dir(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), ("dir", b"", 0o755))

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        if "/" in path:
            self.dir(path.rsplit("/", 1)[0])
        self.entries[path] = ("file", data, mode)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        if "/" in path:
            self.dir(path.rsplit("/", 1)[0])
        self.entries[path] = ("link", target, 0o777)

    def copy_binary(self, host_path: str) -> None:
        """A host binary and every shared library it loads, at the same paths."""
        self.file(host_path, Path(host_path).read_bytes(), 0o755)
        for lib in _shared_libraries(host_path):
            real = Path(lib).resolve()
            self.file(str(real), real.read_bytes(), 0o755)
            if str(real) != lib:
                self.symlink(lib, str(real))

    def tar(self) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.entries):
                kind, data, mode = self.entries[name]
                info = tarfile.TarInfo(name)
                info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif kind == "link":
                    info.type, info.linkname = tarfile.SYMTYPE, str(data)
                    tar.addfile(info)
                else:
                    blob = data.encode() if isinstance(data, str) else data
                    info.size = len(blob)
                    tar.addfile(info, io.BytesIO(blob))
        return raw.getvalue()


def _shared_libraries(binary: str) -> list[str]:
    out = run(["ldd", binary], what=f"listing the libraries of {binary}", check=False)
    if "not a dynamic executable" in out.stdout + out.stderr:
        return []
    libs = re.findall(r"(?:=>\s*)?(/\S+)\s+\(0x", out.stdout)
    return sorted(set(libs))


def _need(path: str, package: str) -> None:
    if not Path(path).exists():
        raise HardwayError(f"{path} is missing: install Debian's {package} package "
                           f"(apt-get install {package}) to build the offline images")


def pause_rootfs(work: Path) -> Rootfs:
    binary = work / "pause"
    run(["gcc", "-static", "-Os", "-s", "-o", str(binary), str(DATA / "pause.c")],
        what="compiling the pause image's program", fix="apt-get install gcc libc6-dev")
    rootfs = Rootfs()
    rootfs.file("pause", binary.read_bytes(), 0o755)
    return rootfs


def busybox_rootfs() -> Rootfs:
    _need("/bin/busybox", "busybox-static")
    kind = run(["ldd", "/bin/busybox"], what="checking /bin/busybox", check=False)
    if "not a dynamic executable" not in kind.stdout + kind.stderr:
        raise HardwayError("/bin/busybox is dynamically linked: apt-get install busybox-static")
    rootfs = Rootfs()
    rootfs.file("bin/busybox", Path("/bin/busybox").read_bytes(), 0o755)
    applets = run(["/bin/busybox", "--list"], what="listing busybox's applets",
                  fix="apt-get install --reinstall busybox-static").stdout.split()
    for applet in applets:
        if applet != "busybox":
            rootfs.symlink(f"bin/{applet}", "busybox")  # relative: absolute links break /bin/sh
    _base_files(rootfs)
    return rootfs


def nginx_rootfs() -> Rootfs:
    _need("/usr/sbin/nginx", "nginx-light")
    rootfs = Rootfs()
    rootfs.copy_binary("/usr/sbin/nginx")
    rootfs.file("etc/nginx/nginx.conf", NGINX_CONF.encode())
    rootfs.file("usr/share/nginx/html/index.html", INDEX_HTML.encode())
    for path in ("var/log/nginx", "var/lib/nginx", "run", "tmp"):
        rootfs.dir(path)
    _base_files(rootfs)
    return rootfs


def _base_files(rootfs: Rootfs) -> None:
    rootfs.file("etc/passwd", PASSWD.encode())
    rootfs.file("etc/group", GROUP.encode())
    rootfs.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    rootfs.file("etc/hosts", b"127.0.0.1 localhost\n")
    rootfs.dir("tmp")


def oci_archive(name: str, rootfs: Rootfs, arch: str, config: dict) -> bytes:
    """A one-layer OCI image layout archive named `name` (io.containerd.image.name)."""
    import gzip

    layer_tar = rootfs.tar()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as out:
        out.write(layer_tar)
    layer = gz.getvalue()
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    image_config = {
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        "history": [{"created_by": "hardway mirror build", "comment": "one layer"}],
    }
    config_desc = blob(json.dumps(image_config, sort_keys=True).encode())
    layer_desc = blob(layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_desc}],
    }
    manifest_desc = blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc,
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        }],
    }
    files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
             "index.json": json.dumps(index, sort_keys=True).encode()}
    files.update({f"blobs/sha256/{d.split(':', 1)[1]}": data for d, data in blobs.items()})
    archive = Rootfs()
    archive.dir("blobs/sha256")
    for path, data in files.items():
        archive.file(path, data)
    return archive.tar()


def inputs_key(names: dict[str, str], arch: str) -> str:
    """What the images are made of: this recipe, pause.c, and the host's busybox and nginx
    with their libraries (by size and modification time, as a package upgrade changes them)."""
    digest = hashlib.sha256(json.dumps([names, arch]).encode())
    digest.update(Path(__file__).read_bytes())
    digest.update((DATA / "pause.c").read_bytes())
    for binary in ("/bin/busybox", "/usr/sbin/nginx"):
        for path in (binary, *_shared_libraries(binary)):
            with suppress(OSError):  # a missing one is reported when the image is made
                stat = Path(path).stat()
                digest.update(f"{path} {stat.st_size} {stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def build_all(settings: Settings, mirror: Mirror, log: Log) -> None:
    arch = artifacts.host_arch()
    names = image_names()
    key = inputs_key(names, arch)
    files = [f"images/{name}-{arch}.tar" for name in names]
    index = mirror.index()["images"]
    if all(names[n] in index for n in names) and mirror.fresh(files, key):
        log("images: in the mirror, up to date")
        return
    with tempfile.TemporaryDirectory() as tmp:
        recipes: dict[str, tuple[Callable[[], Rootfs], dict]] = {
            "pause": (lambda: pause_rootfs(Path(tmp)), {"Entrypoint": ["/pause"]}),
            "busybox": (busybox_rootfs, {"Cmd": ["sh"], "Env": ["PATH=/bin"]}),
            "nginx": (nginx_rootfs, {"Cmd": ["/usr/sbin/nginx"], "Env": ["PATH=/usr/sbin:/bin"],
                                     "ExposedPorts": {"80/tcp": {}},
                                     "StopSignal": "SIGQUIT"}),
        }
        for image, (make, config) in recipes.items():
            name = names[image]
            data = oci_archive(name, make(), arch, config)
            digest = mirror.put_image(name, f"images/{image}-{arch}.tar", data)
            log(f"image {name}: images/{image}-{arch}.tar sha256:{digest[:12]} "
                f"({len(data) // 1024} KiB)")
    mirror.stamp(files, key)
