"""The `docker` sandbox: one hardened Docker container per sandbox, through the docker SDK. See _containers.py."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from wegent_core import SandboxError

from ._containers import ContainerConfig, ContainerProvider, EngineApi, not_found


class DockerApi(EngineApi):
    name = "docker"

    def __init__(self, base_url: str | None = None) -> None:
        try:
            import docker
        except ImportError as exc:
            raise SandboxError("the docker sandbox needs the docker SDK: pip install 'wegent[docker]'") from exc
        self.url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.client = docker.DockerClient(base_url=self.url)
        self.api = self.client.api
        self.api.ping()

    def image_user(self, image: str) -> str:
        try:
            return str(self.api.inspect_image(image)["Config"].get("User") or "")
        except Exception as exc:
            if not_found(exc):
                raise SandboxError(f"no image {image} in docker: build it with `wegent image build`") from exc
            raise

    def create(self, config: ContainerConfig) -> str:
        from docker.types import Mount

        host_config = self.api.create_host_config(
            network_mode=config.network,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            tmpfs=config.tmpfs,
            mem_limit=config.memory_bytes,
            memswap_limit=config.memory_bytes,  # no swap beyond the memory limit
            nano_cpus=config.nano_cpus,
            pids_limit=config.pids,
            mounts=[Mount(target, source, type="bind", read_only=ro) for source, target, ro in config.binds],
            init=True,  # docker-init reaps the orphans of killed commands
        )
        created = self.api.create_container(
            config.image,
            command=config.command,
            user=config.user or "",
            environment=config.env,
            working_dir=config.workdir,
            labels=config.labels,
            host_config=host_config,
            network_disabled=config.network == "none",
        )
        return str(created["Id"])

    def start(self, container: str) -> None:
        self.api.start(container)

    def inspect(self, container: str) -> dict[str, Any]:
        return dict(self.api.inspect_container(container))

    def remove(self, container: str) -> None:
        try:
            self.api.remove_container(container, force=True, v=True)
        except Exception as exc:
            if not not_found(exc) and "already in progress" not in str(exc):
                raise

    def containers(self, label: str) -> list[tuple[str, dict[str, str]]]:
        found = self.api.containers(all=True, filters={"label": label})
        return [(str(item["Id"]), dict(item.get("Labels") or {})) for item in found]

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        self.api.put_archive(container, path, data)

    def get_archive(self, container: str, path: str) -> bytes:
        stream, _stat = self.api.get_archive(container, path)
        return b"".join(stream)

    def exec_create(self, container: str, argv: list[str], env: Mapping[str, str], workdir: str, stdin: bool) -> str:
        created = self.api.exec_create(
            container, argv, stdout=True, stderr=True, stdin=stdin, environment=dict(env), workdir=workdir
        )
        return str(created["Id"])

    def exec_start_path(self, exec_id: str) -> str:
        return f"/v{self.api._version}/exec/{exec_id}/start"

    def exec_state(self, exec_id: str) -> tuple[bool, int | None]:
        info = self.api.exec_inspect(exec_id)
        return bool(info.get("Running")), info.get("ExitCode")

    def close(self) -> None:
        self.client.close()


class DockerProvider(ContainerProvider):
    """Docker sandboxes. Options: `base_url` (default $DOCKER_HOST, else /var/run/docker.sock), `image` (default
    wegent-sandbox:latest), `reap_at_start` (default true)."""

    name = "docker"

    def _connect(self) -> EngineApi:
        return DockerApi(self.options.get("base_url"))
