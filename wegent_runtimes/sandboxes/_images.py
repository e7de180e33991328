"""Sandbox images built locally, without a registry: a root filesystem made here and imported into Docker or Podman.

Two bases:
* `busybox`: the static busybox binary from the host's `busybox-static` package and its applet links (about 2 MB; builds
  in a second). What most tests use.
* `debian`: `debootstrap --variant=minbase` with python3, git and coreutils (about 300 MB, a minute or more), for work
  that needs git or Python.

Both have a non-root user `wegent` (uid and gid 1000), run as it (`USER 1000:1000`) in `WORKDIR /workspace`. An image
carries the hash of what it was built from in its tag (`wegent-sandbox:<base>-<hash>`, besides `wegent-sandbox:<base>`),
so a build whose inputs have not changed finds the image and skips the work. The root filesystem tarball is cached too
(in `$XDG_CACHE_HOME/wegent/images`), so building for a second engine only imports it. See docs/images.md.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wegent_core import SandboxError

Base = Literal["busybox", "debian"]
EngineName = Literal["docker", "podman"]
BASES: tuple[Base, ...] = ("busybox", "debian")
ENGINES: tuple[EngineName, ...] = ("docker", "podman")
REPOSITORY = "wegent-sandbox"
DEFAULT_BASE: Base = "debian"
DEFAULT_IMAGE = f"{REPOSITORY}:latest"  # what a provider uses when neither the spec nor its options name an image
USER_ID = 1000
BUILDER_VERSION = "1"  # bump when the recipe changes, so cached images are rebuilt
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "git", "coreutils", "ca-certificates")
BUSYBOX = "/bin/busybox"
CHANGES = (
    f"USER {USER_ID}:{USER_ID}",
    "WORKDIR /workspace",
    'CMD ["/bin/sh"]',
    "ENV PATH=" + ":".join(("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")),
)
PASSWD = f"root:x:0:0:root:/root:/bin/sh\nwegent:x:{USER_ID}:{USER_ID}:wegent:/home/wegent:/bin/sh\n"
GROUP = f"root:x:0:\nwegent:x:{USER_ID}:\n"

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BuiltImage:
    engine: EngineName
    base: Base
    tag: str  # the name asked for (wegent-sandbox:<base> by default)
    hashed_tag: str  # wegent-sandbox:<base>-<hash>: present only if built from the current inputs
    image_id: str
    built: bool  # False: the image was already there, built from the same inputs
    seconds: float


def image_name(base: Base) -> str:
    return f"{REPOSITORY}:{base}"


def input_hash(base: Base) -> str:
    """A hash of what an image of `base` is built from: the recipe, and the busybox binary or the Debian release."""
    digest = hashlib.sha256(f"{BUILDER_VERSION}\n{base}\n{CHANGES}\n{PASSWD}\n{GROUP}".encode())
    if base == "busybox":
        digest.update(_busybox_path().read_bytes())
    else:
        digest.update(f"{DEBIAN_SUITE}\n{DEBIAN_PACKAGES}\n{debian_mirror()}".encode())
    return digest.hexdigest()[:12]


def build_image(
    engine: EngineName,
    base: Base = DEFAULT_BASE,
    tag: str | None = None,
    *,
    client: Any = None,
    force: bool = False,
    log: Log | None = None,
) -> BuiltImage:
    """Build the sandbox image of `base` into `engine` (a docker or podman SDK client, or one made from the
    environment) unless an image from the same inputs is there already. Tags it `tag` (default `wegent-sandbox:<base>`)
    and, for the default base, also `wegent-sandbox:latest`."""
    say = log or (lambda _message: None)
    start = time.monotonic()
    digest = input_hash(base)
    hashed = f"{REPOSITORY}:{base}-{digest}"
    names = [tag or image_name(base)] + ([DEFAULT_IMAGE] if base == DEFAULT_BASE and tag is None else [])
    own = client is None
    client = client or engine_client(engine)
    try:
        image_id = None if force else _image_id(client, hashed)
        built = image_id is None
        if built:
            rootfs = rootfs_tarball(base, log=say)
            say(f"importing {rootfs.name} into {engine} as {hashed}")
            image_id = _import(engine, client, rootfs, hashed)
        for name in names:
            _tag(client, image_id, name)
        say(f"{engine}: {', '.join(names)} -> {image_id[:19]} ({'built' if built else 'up to date'})")
        return BuiltImage(engine, base, names[0], hashed, image_id, built, time.monotonic() - start)
    finally:
        if own:
            client.close()


def engine_client(engine: EngineName, base_url: str | None = None) -> Any:
    """A docker or podman SDK client, from `base_url` or the environment ($DOCKER_HOST, $CONTAINER_HOST, the
    rootful socket)."""
    from ._containers import connect

    return connect(engine, base_url)


# --- root filesystems -----------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "wegent" / "images"


def rootfs_tarball(base: Base, *, log: Log | None = None) -> Path:
    """The root filesystem of `base` as a tarball, from the cache when its inputs have not changed."""
    path = cache_dir() / f"{base}-{input_hash(base)}.tar"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    if base == "busybox":
        _busybox_rootfs(partial)
    else:
        _debian_rootfs(partial, log or (lambda _message: None))
    partial.replace(path)  # atomic: a build killed halfway leaves no tarball that looks complete
    return path


def _busybox_path() -> Path:
    path = Path(shutil.which("busybox") or BUSYBOX)
    if not path.exists():
        raise SandboxError("no busybox binary: install the busybox-static package (apt-get install busybox-static)")
    # A dynamically linked busybox would not run in an image with no libc.
    if subprocess.run(["ldd", str(path)], capture_output=True, text=True).returncode == 0:
        raise SandboxError(f"{path} is dynamically linked: install busybox-static (apt-get install busybox-static)")
    return path


def _busybox_rootfs(target: Path) -> None:
    busybox = _busybox_path()
    applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(target, "w") as tar:
        for directory, mode in (
            ("bin", 0o755),
            ("sbin", 0o755),
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("usr/sbin", 0o755),
            ("etc", 0o755),
            ("root", 0o700),
            ("tmp", 0o1777),
            ("var", 0o755),
            ("var/tmp", 0o1777),
            ("home", 0o755),
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
        ):
            _add_dir(tar, directory, mode)
        for directory in ("home/wegent", "workspace"):
            _add_dir(tar, directory, 0o755, owner=USER_ID)
        tar.add(str(busybox), arcname="bin/busybox", filter=_root_owned)
        for applet in applets:
            if applet != "bin/busybox":
                link = tarfile.TarInfo(applet)
                link.type = tarfile.SYMTYPE
                link.linkname = "/bin/busybox"
                tar.addfile(link)
        for name, text in _etc_files().items():
            _add_file(tar, name, text.encode())


def _etc_files() -> dict[str, str]:
    return {"etc/passwd": PASSWD, "etc/group": GROUP, "etc/shadow": "root:*:19000::::::\nwegent:*:19000::::::\n"}


def _add_dir(tar: tarfile.TarFile, name: str, mode: int, owner: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid = info.gid = owner
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def debian_mirror() -> str:
    """The Debian mirror apt is configured with (no other is reachable here)."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        text = source.read_text(errors="replace") if source.is_file() else ""
        for match in re.finditer(r"(?:^deb\s+(?:\[[^]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.MULTILINE):
            if re.search(r"/debian/?$", match.group(1)):
                return match.group(1)
    return "http://deb.debian.org/debian"


def _debian_rootfs(target: Path, log: Log) -> None:
    if os.geteuid() != 0:
        raise SandboxError("building the debian image runs debootstrap, which needs root")
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="wegent-rootfs-") as scratch:
        root = Path(scratch) / "rootfs"
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(root),
            debian_mirror(),
        ]
        log(f"running {' '.join(command)} (about a minute)")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SandboxError(f"debootstrap failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        _add_user(root)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / cache).glob("*.deb" if cache.endswith("archives") else "*_*"):
                entry.unlink()
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(target), "."], check=True)


def _add_user(root: Path) -> None:
    for name, line in (
        ("passwd", PASSWD.splitlines()[1]),
        ("group", GROUP.splitlines()[1]),
        ("shadow", "wegent:*:19000::::::"),
    ):
        path = root / "etc" / name
        if not any(entry.split(":")[0] == "wegent" for entry in path.read_text().splitlines()):
            with path.open("a") as file:
                file.write(line + "\n")
    for directory in ("home/wegent", "workspace"):
        (root / directory).mkdir(parents=True, exist_ok=True)
        os.chown(root / directory, USER_ID, USER_ID)


# --- engines ----------------------------------------------------------------------------------------------------------


def _image_id(client: Any, name: str) -> str | None:
    try:
        image = client.images.get(name)
    except Exception as exc:  # docker.errors.ImageNotFound / podman.errors.ImageNotFound
        if type(exc).__name__ in ("ImageNotFound", "NotFound"):
            return None
        raise
    return str(image.id)


def _import(engine: EngineName, client: Any, rootfs: Path, name: str) -> str:
    repository, tag = name.rsplit(":", 1)
    if engine == "docker":
        with rootfs.open("rb") as data:
            output = client.api.import_image_from_data(data, repository=repository, tag=tag, changes=list(CHANGES))
        found = re.findall(r"sha256:[0-9a-f]{64}", str(output))
        if not found:
            raise SandboxError(f"docker import of {rootfs} failed: {output}")
        return found[-1]
    params: list[tuple[str, str]] = [("reference", name)] + [("changes", change) for change in CHANGES]
    with rootfs.open("rb") as data:
        response = client.api.post(
            "/images/import", params=params, data=data, headers={"Content-Type": "application/x-tar"}
        )
    if response.status_code >= 400:
        raise SandboxError(f"podman import of {rootfs} failed: {response.text}")
    return str(client.images.get(name).id)


def _tag(client: Any, image_id: str, name: str) -> None:
    repository, tag = name.rsplit(":", 1)
    if not client.images.get(image_id).tag(repository, tag):
        raise SandboxError(f"could not tag {image_id} as {name}")


def build_images(
    engines: Iterable[EngineName], base: Base = DEFAULT_BASE, tag: str | None = None, **options: Any
) -> list[BuiltImage]:
    return [build_image(engine, base, tag, **options) for engine in engines]
