"""Real Docker and Podman engines for the container sandbox tests.

The session installs what is missing (apt-get), starts an engine whose socket does not answer (and stops only the
engines it started), and builds the busybox sandbox image once per engine (skipped when an image of the same inputs
exists). Every container a test makes is labelled with this session's id, and at the end no container of the session
may be left (checked by label).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wegent_core import SandboxSpec
from wegent_runtimes.sandboxes._containers import LABEL_OWNER, ContainerProvider, ContainerSandbox, owner_label
from wegent_runtimes.sandboxes._docker import DockerApi, DockerProvider
from wegent_runtimes.sandboxes._images import build_image, image_name
from wegent_runtimes.sandboxes._podman import PodmanApi, PodmanProvider

PACKAGES = ("docker.io", "podman", "uidmap", "busybox-static", "debootstrap")
DOCKER_URL = "unix:///var/run/docker.sock"
PODMAN_URL = "unix:///run/podman/podman.sock"
IMAGE = image_name("busybox")
SESSION = uuid.uuid4().hex
SESSION_LABEL = "wegent.test-session"
# This host's kernel has hybrid cgroups that crun refuses, and Podman's default rlimits exceed the hard limits here.
PODMAN_RUNTIME = {"runtime": "runc", "ulimits": {"nofile": 1024, "nproc": 1024}}
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""
ENGINES = ("docker", "podman")
_STARTED: list[bool] = []

Make = Callable[..., Awaitable[ContainerSandbox]]


def provider_options(engine: str, **extra: Any) -> dict[str, Any]:
    base = {"image": IMAGE, "base_url": DOCKER_URL if engine == "docker" else PODMAN_URL}
    return {**base, **(PODMAN_RUNTIME if engine == "podman" else {}), **extra}


def new_provider(engine: str, **extra: Any) -> ContainerProvider:
    options = provider_options(engine, **extra)
    return DockerProvider(options) if engine == "docker" else PodmanProvider(options)


def engine_api(engine: str) -> DockerApi | PodmanApi:
    return DockerApi(DOCKER_URL) if engine == "docker" else PodmanApi(PODMAN_URL)


def _install() -> None:
    needed = {"dockerd": "docker.io", "podman": "podman", "newuidmap": "uidmap", "debootstrap": "debootstrap"}
    missing = [package for binary, package in needed.items() if shutil.which(binary) is None]
    if subprocess.run(["dpkg", "-s", "busybox-static"], capture_output=True).returncode != 0:
        missing.append("busybox-static")
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "install", "-y", *PACKAGES], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        done = subprocess.run(["apt-get", "install", "-y", *PACKAGES], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        pytest.fail(f"could not install {missing}: {done.stderr[-2000:]}")


def _answers(engine: str) -> bool:
    try:
        engine_api(engine).close()
    except Exception:
        return False
    return True


def _start(engine: str, scratch: Path) -> subprocess.Popen[bytes] | None:
    """Start the engine if its socket does not answer; the process we started (None: one was running)."""
    if _answers(engine):
        return None
    log = (scratch / f"{engine}.log").open("wb")
    if engine == "docker":
        command = ["dockerd", "--iptables=false", "--bridge=none"]
        env = dict(os.environ)
    else:
        Path("/run/podman").mkdir(parents=True, exist_ok=True)
        conf = scratch / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        command = ["podman", "system", "service", "--time=0", PODMAN_URL]
        env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    process = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not _answers(engine):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{engine} did not start: {(scratch / f'{engine}.log').read_text()[-2000:]}")
        time.sleep(0.2)
    return process


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ...]]:
    """Both engines running, with the busybox sandbox image built in each."""
    _install()
    scratch = tmp_path_factory.mktemp("engines")
    _STARTED.append(True)
    started = [process for engine in ENGINES if (process := _start(engine, scratch)) is not None]
    try:
        for engine in ENGINES:
            build_image(engine, "busybox")
        yield ENGINES
    finally:
        for process in started:  # only the engines this session started
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session", autouse=True)
def _no_container_left() -> Iterator[None]:
    """At the end of the session no container made by it may be left: by the session label, or by this process's
    owner label (the conformance suite's containers)."""
    yield
    if not _STARTED:  # no test needed the engines
        return
    leftovers = []
    for engine in ENGINES:
        if not _answers(engine):
            continue
        api = engine_api(engine)
        try:
            found = {cid for cid, _ in api.containers(f"{SESSION_LABEL}={SESSION}")}
            found |= {cid for cid, _ in api.containers(f"{LABEL_OWNER}={owner_label()}")}
            for container in found:
                api.remove(container)
            leftovers += [f"{engine}:{container[:12]}" for container in found]
        finally:
            api.close()
    assert not leftovers, f"containers left behind by the tests: {leftovers}"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, engines: tuple[str, ...]) -> str:
    return str(request.param)


@pytest.fixture
async def provider(engine: str) -> AsyncIterator[ContainerProvider]:
    provider = new_provider(engine)
    yield provider
    await provider.aclose()


@pytest.fixture
async def make(provider: ContainerProvider) -> AsyncIterator[Make]:
    """`await make(**spec_fields)`: a sandbox labelled with the session, closed after the test unless preserved
    (preserved ones are reaped by the test itself or at the end of the session)."""
    made: list[ContainerSandbox] = []

    async def create(**fields: Any) -> ContainerSandbox:
        labels = {SESSION_LABEL: SESSION, **fields.pop("labels", {})}
        sandbox = await provider.create(SandboxSpec(labels=labels, **fields))
        made.append(sandbox)
        return sandbox

    yield create
    for sandbox in made:
        await sandbox.close()
    await provider.reap(lambda labels: labels.get(SESSION_LABEL) != SESSION or labels.get("wegent.preserve") != "true")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
