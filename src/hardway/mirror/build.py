"""Build the pinned upstream components from the Go module proxy, for the host's architecture.

Each component is built once per (version, recipe, Go version) into a cache directory
outside the repository; a warm `build` only repacks cached binaries. Tarballs are packed
deterministically, so a rebuild gives byte-identical artifacts and unchanged checksums.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hardway.children import run, run_json
from hardway.files import atomic_write, exclusive
from hardway.mirror import artifacts, images
from hardway.mirror.store import Mirror
from hardway.settings import HardwayError, Settings

CONTAINERD = "github.com/containerd/containerd/v2"
RUNC = "github.com/opencontainers/runc"
CNI = "github.com/containernetworking/plugins"
CRICTL = "sigs.k8s.io/cri-tools"
KUBERNETES = "k8s.io/kubernetes"
ETCD = "go.etcd.io/etcd"

# How each component is built: packages, cgo, tags and version ldflags, as upstream's
# release scripts do it. {v} is the version without its leading "v". Changing a recipe
# changes its cache key, so the next build redoes that component only.
RECIPES: dict[str, list[dict]] = {
    "containerd": [
        {
            "packages": [f"{CONTAINERD}/cmd/containerd", f"{CONTAINERD}/cmd/ctr"],
            "cgo": False,
            "tags": "urfave_cli_no_docs",
            "ldflags": f"-s -w -X {CONTAINERD}/version.Version=v{{v}} "
            f"-X {CONTAINERD}/version.Package={CONTAINERD}",
        },
        {
            "packages": [f"{CONTAINERD}/cmd/containerd-shim-runc-v2"],
            "cgo": False,
            "tags": "urfave_cli_no_docs no_grpc",
            "ldflags": f"-s -w -X {CONTAINERD}/version.Version=v{{v}} "
            f"-X {CONTAINERD}/version.Package={CONTAINERD}",
        },
    ],
    "runc": [
        {
            # cgo is required (nsenter); seccomp needs libseccomp.a for a static binary.
            "packages": [RUNC],
            "cgo": True,
            "tags": "seccomp urfave_cli_no_docs netgo osusergo",
            "ldflags": "-s -w -linkmode external -extldflags -static-pie",
            "buildmode": "pie",
        }
    ],
    "cni_plugins": [
        {
            "packages": [
                f"{CNI}/plugins/main/bridge",
                f"{CNI}/plugins/ipam/host-local",
                f"{CNI}/plugins/main/loopback",
                f"{CNI}/plugins/meta/portmap",
                f"{CNI}/plugins/meta/firewall",
                f"{CNI}/plugins/meta/tuning",
            ],
            "cgo": False,
            "tags": "",
            "ldflags": f"-s -w -X {CNI}/pkg/utils/buildversion.BuildVersion=v{{v}}",
        }
    ],
    "crictl": [
        {
            "packages": [f"{CRICTL}/cmd/crictl"],
            "cgo": False,
            "tags": "",
            "ldflags": f"-s -w -X {CRICTL}/pkg/version.Version=v{{v}}",
        }
    ],
    "kubelet": [
        {
            # k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the staging
            # modules with local paths), so a wrapper module replaces each with its
            # published v0.Y.Z twin. See _build_kubelet.
            "packages": [f"{KUBERNETES}/cmd/kubelet"],
            "cgo": False,
            "tags": "selinux,notest,grpcnotrace",
            "ldflags": "-s -w",
            "wrapper": True,
        }
    ],
    # The control plane, built only when asked for (artifacts.wanted). etcd's modules
    # replace their siblings with local paths too, so a wrapper requires them instead.
    "etcd": [
        {
            "packages": [f"{ETCD}/server/v3", f"{ETCD}/etcdctl/v3"],
            "binaries": ["etcd", "etcdctl"],
            "cgo": False,
            "tags": "",
            "ldflags": "-s -w",
            "wrapper": True,
        }
    ],
    **{
        component: [
            {
                "packages": [f"{KUBERNETES}/cmd/{component.replace('_', '-')}"],
                "cgo": False,
                "tags": "selinux,notest,grpcnotrace",
                "ldflags": "-s -w",
                "wrapper": True,
            }
        ]
        for component in ("kube_apiserver", "kube_controller_manager", "kube_scheduler", "kubectl")
    },
}

Log = Callable[[str], None]


def go_version() -> str:
    return run(["go", "env", "GOVERSION"], what="asking Go for its version",
               fix="install Go 1.26 or newer, or use `hardway mirror sync` on a connected "
               "machine").stdout.strip()


def installed_go() -> str | None:
    """Go's version, or None on a machine without Go: it is asked only when there is one."""
    return go_version() if shutil.which("go") else None


def cache_key(component: str, version: str, arch: str, go: str) -> str:
    recipe = json.dumps({"recipe": RECIPES[component], "version": version, "arch": arch, "go": go},
                        sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def _go_env(cgo: bool, arch: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CGO_ENABLED="1" if cgo else "0", GOOS="linux", GOARCH=arch, GOTOOLCHAIN="local",
               GOFLAGS="-buildvcs=false")
    return env


def _run(cmd: list[str], cwd: Path | None, env: dict[str, str], log: Log, logfile: Path) -> None:
    log(f"  $ {' '.join(cmd)}")
    with logfile.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
    run(cmd, what=f"building {logfile.stem}", fix=f"the whole log is {logfile}", log=logfile,
        cwd=cwd, env=env)


def _build_step(step: dict, version: str, arch: str, out: Path, work: Path, log: Log,
                logfile: Path) -> None:
    env = _go_env(step["cgo"], arch)
    flags = ["-trimpath", "-ldflags", step["ldflags"].format(v=version)]
    if step["tags"]:
        flags += ["-tags", step["tags"]]
    if step.get("buildmode"):
        flags += [f"-buildmode={step['buildmode']}"]
    if step.get("wrapper"):
        wrapped = _build_etcd if step["packages"][0].startswith(ETCD) else _build_kubernetes
        wrapped(step, version, flags, env, out, work, log, logfile)
        return
    env["GOBIN"] = str(out)
    _run(["go", "install", *flags, *[f"{p}@v{version}" for p in step["packages"]]],
         work, env, log, logfile)


def _binaries(step: dict) -> dict[str, str]:
    """Binary name -> package: the package's last element unless the recipe names it."""
    names = step.get("binaries") or [p.rsplit("/", 1)[1] for p in step["packages"]]
    return dict(zip(names, step["packages"], strict=True))


def _wrapper(step: dict, work: Path, lines: list[str], log: Log, logfile: Path,
             env: dict[str, str]) -> Path:
    """A module of its own per recipe whose tools.go imports the packages, tidied."""
    binaries = _binaries(step)
    mod = work / f"{next(iter(binaries))}-wrapper"
    mod.mkdir(parents=True, exist_ok=True)
    (mod / "go.mod").write_text("\n".join([f"module local/{mod.name}", "", *lines]) + "\n")
    imports = "".join(f'\t_ "{package}"\n' for package in binaries.values())
    (mod / "tools.go").write_text(
        f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n")
    _run(["go", "mod", "tidy"], mod, env, log, logfile)
    return mod


def _go_mod(module: str, version: str, env: dict[str, str], cwd: Path) -> tuple[dict, dict]:
    """The proxy's answer for module@version, and its go.mod as JSON."""
    cwd.mkdir(parents=True, exist_ok=True)
    info = run_json(["go", "list", "-m", "-json", f"{module}@v{version}"],
                    what=f"finding {module}@v{version} on the Go module proxy", env=env,
                    cwd=cwd, fix="check the version and that GOPROXY answers")
    upstream = run_json(["go", "mod", "edit", "-json", info["GoMod"]], env=env,
                        what=f"reading the go.mod of {module}@v{version}",
                        fix=f"remove {info['GoMod']} so Go fetches it again")
    return info, upstream


def _build_kubernetes(step: dict, version: str, flags: list[str], env: dict[str, str], out: Path,
                      work: Path, log: Log, logfile: Path) -> None:
    """A wrapper module that requires k8s.io/kubernetes and pins every staging module."""
    staging = "0." + version.split(".", 1)[1]
    info, upstream = _go_mod(KUBERNETES, version, env, work)
    lines = [f"go {upstream['Go']}", ""]
    # Keep upstream's runtime GODEBUG defaults: its own godebug lines are ignored in a dependency.
    lines += [f"godebug {d['Key']}={d['Value']}" for d in upstream.get("Godebug") or []]
    lines += ["", f"require {KUBERNETES} v{version}", ""]
    lines += [f"replace {r['Path']} => {r['Path']} v{staging}"
              for r in upstream["Require"] if r["Version"] == "v0.0.0"]
    mod = _wrapper(step, work, lines, log, logfile, env)
    date = info.get("Time", "1970-01-01T00:00:00Z").replace("+00:00", "Z")
    minor = version.split(".")[1]
    ldflags = flags[flags.index("-ldflags") + 1]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += (f" -X {pkg}.gitVersion=v{version} -X {pkg}.gitMajor=1 -X {pkg}.gitMinor={minor}"
                    f" -X {pkg}.gitTreeState=clean -X {pkg}.buildDate={date}")
    flags[flags.index("-ldflags") + 1] = ldflags
    for name, package in _binaries(step).items():
        _run(["go", "build", *flags, "-o", str(out / name), package], mod, env, log, logfile)


def _build_etcd(step: dict, version: str, flags: list[str], env: dict[str, str], out: Path,
                work: Path, log: Log, logfile: Path) -> None:
    """A wrapper module that requires etcd's server and etcdctl modules at the release.
    Its go line is the server's, so the runtime's GODEBUG defaults are upstream's."""
    modules = list(step["packages"])
    _, upstream = _go_mod(modules[0], version, env, work)
    lines = [f"go {upstream['Go']}", "", "require (",
             *[f"\t{module} v{version}" for module in modules], ")"]
    mod = _wrapper(step, work, lines, log, logfile, env)
    for name, package in _binaries(step).items():
        _run(["go", "build", *flags, "-o", str(out / name), package], mod, env, log, logfile)


# Seconds between "still building" lines: a cold kubelet build is minutes of silence otherwise.
TICK = 30


def _minutes(seconds: float) -> str:
    return f"{int(seconds) // 60} min {int(seconds) % 60:02d} s"


@contextmanager
def _ticking(log: Log, what: str, estimate: float | None, every: float) -> Iterator[None]:
    """A line every `every` seconds while the body runs: elapsed time, against the estimate."""
    done = threading.Event()
    begun = time.monotonic()

    def tick() -> None:
        while not done.wait(every):
            elapsed = time.monotonic() - begun
            if estimate is None:
                log(f"{what}: building, {_minutes(elapsed)} so far (no earlier build to compare)")
            elif elapsed < estimate:
                log(f"{what}: building, {_minutes(elapsed)} so far, about "
                    f"{_minutes(estimate - elapsed)} to go (the last build took {_minutes(estimate)})")
            else:
                log(f"{what}: building, {_minutes(elapsed)} so far, longer than the last "
                    f"build ({_minutes(estimate)})")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


def _build_times(settings: Settings) -> dict[str, float]:
    """Seconds the last build of each component took: the next one's estimate."""
    try:
        times = json.loads((settings.cache / "build" / "times.json").read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: no estimate, never an error
    return {k: float(v) for k, v in times.items() if isinstance(v, int | float)} \
        if isinstance(times, dict) else {}


def build_component(settings: Settings, component: str, version: str, arch: str, log: Log) -> Path:
    """Binaries of one component in a cache directory; built only if not cached yet."""
    key = cache_key(component, version, arch, go_version())
    out = settings.cache / "build" / f"{component}-{version}-{arch}-{key}"
    if (out / ".complete").exists():
        log(f"{component} {version}: cached ({out.name})")
        return out
    times = _build_times(settings)
    estimate = times.get(component)
    log(f"{component} {version}: building for {arch} (logs in {out}.log" +
        (f"; the last build took {_minutes(estimate)})" if estimate else ")"))
    work = settings.cache / "build" / "src"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{component}-", dir=out.parent))
    logfile = Path(f"{out}.log")
    logfile.write_text("")
    begun = time.monotonic()
    try:
        with _ticking(log, f"{component} {version}", estimate, TICK):
            for step in RECIPES[component]:
                _build_step(step, version, arch, tmp, work, log, logfile)
        times[component] = round(time.monotonic() - begun, 1)
        atomic_write(settings.cache / "build" / "times.json",
                     json.dumps(times, indent=1, sort_keys=True).encode())
        log(f"{component} {version}: built in {_minutes(times[component])}")
        (tmp / ".complete").write_text(key + "\n")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def deterministic_tarball(members: dict[str, Path]) -> bytes:
    """A .tar.gz whose bytes depend only on the files' contents and names."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(members):
            data = members[name].read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def package(art: artifacts.Artifact, built: Path) -> bytes:
    """The release artifact's bytes, from built binaries, as upstream ships it."""
    if art.kind == "binary":
        return (built / art.files[0]).read_bytes()
    members = {}
    for member in art.files:
        binary = built / member.rsplit("/", 1)[-1]
        if not binary.exists():
            raise HardwayError(f"{art.component}: the build produced no {binary.name}")
        members[member] = binary
    return deterministic_tarball(members)


def build(settings: Settings, log: Log,
          components: tuple[str, ...] = artifacts.NODE_COMPONENTS) -> Mirror:
    arch = artifacts.host_arch()
    mirror = Mirror(settings.mirror)
    mirror.index()  # a malformed index is refused now, not after the builds
    versions = artifacts.pinned_versions()
    # A mirror synced from the official releases, or built elsewhere and copied here, serves
    # a machine that has no Go.
    go = installed_go()
    # What packs an artifact (this file) is an input too, beside what built its binaries.
    packing = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]
    index = mirror.index()
    recorded, sources = index["checksums"], index["sources"]  # put() only adds to them
    for component in components:
        art = artifacts.artifact(component, arch, versions[component])
        files = [art.local_path, art.local_checksum_path]
        there = bool(recorded.get(component, {}).get(arch, {}).get(art.version)) and \
            all((mirror.root / f).exists() for f in files)
        if there and sources.get(component) == "upstream":
            log(f"{component} {art.version}: in the mirror, the official release")
            continue
        if there and go is None:
            log(f"{component} {art.version}: in the mirror (no Go here to check its recipe: kept)")
            continue
        if there and go and mirror.fresh(files, f"{cache_key(component, art.version, arch, go)}-{packing}"):
            log(f"{component} {art.version}: in the mirror, up to date")
            continue
        go = go or go_version()  # no Go: its error names the fix
        key = f"{cache_key(component, art.version, arch, go)}-{packing}"
        built = build_component(settings, component, art.version, arch, log)
        mirror.put(art, package(art, built), source="built")
        mirror.stamp(files, key)
    return mirror


def prepare(settings: Settings, log: Log,
            components: tuple[str, ...] = artifacts.NODE_COMPONENTS,
            with_images: bool = True, verify: bool = False) -> Mirror:
    """The mirror up to date (components and lab images rebuilt only where stale), under
    the build cache's lock: another lab may be checking or building it right now. With
    verify, every file is checked against its checksum too (a file untouched since it was
    last found good is not read again)."""
    with exclusive(settings.cache_lock, log, "is building the mirror"):
        mirror = build(settings, log, components)
        if with_images:
            images.build_all(settings, mirror, log)
        problems = mirror.verify(every_byte=False)[1] if verify else []
    if problems:
        raise HardwayError("the mirror is damaged: " + "; ".join(
            f"{p.path}: {p.reason}" for p in problems) + " (run `hardway mirror build` again)")
    return mirror
