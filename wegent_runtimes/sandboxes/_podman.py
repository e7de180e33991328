"""The `podman` sandbox: one hardened Podman container per sandbox, through the podman SDK and Podman's own (libpod)
API, served by `podman system service`. See _containers.py.

The container spec is Podman's SpecGenerator, posted as it is: the SDK's `containers.create` cannot say
no-new-privileges (it maps `security_opt` to SELinux options). The OCI runtime and rlimits are set per container when
the provider's options name them (`runtime: runc`, `ulimits: {nofile: 1024, nproc: 1024}`), for hosts where Podman's
defaults do not work (see docs/images.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wegent_core import SandboxError

from ._containers import ContainerConfig, ContainerProvider, EngineApi, default_podman_url, not_found


class PodmanApi(EngineApi):
    name = "podman"
    globs_paths = True  # GET/PUT .../archive?path=a* means every match of a*

    def __init__(
        self, base_url: str | None = None, runtime: str | None = None, ulimits: Mapping[str, int] | None = None
    ) -> None:
        try:
            import podman
        except ImportError as exc:
            raise SandboxError("the podman sandbox needs the podman SDK: pip install 'wegent[podman]'") from exc
        self.url = base_url or default_podman_url()
        self.client = podman.PodmanClient(base_url=self.url)
        self.api = self.client.api
        self.runtime = runtime
        self.ulimits = dict(ulimits or {})
        self._checked(self.api.get("/_ping"))

    def _checked(self, response: Any) -> Any:
        if response.status_code >= 400:
            from podman.errors import APIError, NotFound

            error = NotFound if response.status_code == 404 else APIError
            raise error(response.text, response=response)
        return response

    def image_user(self, image: str) -> str:
        try:
            return str(self.client.images.get(image).attrs.get("Config", {}).get("User") or "")
        except Exception as exc:
            if not_found(exc):
                raise SandboxError(f"no image {image} in podman: build it with `wegent image build`") from exc
            raise

    def create(self, config: ContainerConfig) -> str:
        spec: dict[str, Any] = {
            "image": config.image,
            "command": config.command,
            "env": config.env,
            "labels": config.labels,
            "work_dir": config.workdir,
            "netns": {"nsmode": "host" if config.network == "host" else "none"},
            "cap_drop": ["ALL"],
            "no_new_privileges": True,
            "read_only_filesystem": True,
            "read_write_tmpfs": False,
            "mounts": [
                {"destination": target, "source": source, "type": "bind", "options": ["rbind", "ro" if ro else "rw"]}
                for source, target, ro in config.binds
            ]
            + [
                {"destination": path, "source": "tmpfs", "type": "tmpfs", "options": options.split(",")}
                for path, options in config.tmpfs.items()
            ],
            "resource_limits": _limits(config),
        }
        if config.user:
            spec["user"] = config.user
        if self.runtime:
            spec["oci_runtime"] = self.runtime
        if self.ulimits:
            spec["r_limits"] = [{"type": name, "soft": value, "hard": value} for name, value in self.ulimits.items()]
        response = self._checked(
            self.api.post("/containers/create", data=json.dumps(spec), headers={"Content-Type": "application/json"})
        )
        return str(response.json()["Id"])

    def start(self, container: str) -> None:
        self._checked(self.api.post(f"/containers/{container}/start"))

    def inspect(self, container: str) -> dict[str, Any]:
        return dict(self._checked(self.api.get(f"/containers/{container}/json")).json())

    def remove(self, container: str) -> None:
        response = self.api.delete(f"/containers/{container}", params={"force": "true", "v": "true", "timeout": 0})
        if response.status_code >= 400 and response.status_code != 404:
            self._checked(response)

    def containers(self, label: str) -> list[tuple[str, dict[str, str]]]:
        filters = json.dumps({"label": [label]})
        found = self._checked(self.api.get("/containers/json", params={"all": "true", "filters": filters})).json()
        return [(str(item["Id"]), dict(item.get("Labels") or {})) for item in found or []]

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        self._checked(self.api.put(f"/containers/{container}/archive", params={"path": path}, data=data))

    def get_archive(self, container: str, path: str) -> bytes:
        return bytes(self._checked(self.api.get(f"/containers/{container}/archive", params={"path": path})).content)

    def exec_create(self, container: str, argv: list[str], env: Mapping[str, str], workdir: str, stdin: bool) -> str:
        body = {
            "AttachStdout": True,
            "AttachStderr": True,
            "AttachStdin": stdin,
            "Cmd": argv,
            "Env": [f"{key}={value}" for key, value in env.items()],
            "WorkingDir": workdir,
            "Tty": False,
        }
        response = self._checked(
            self.api.post(
                f"/containers/{container}/exec", data=json.dumps(body), headers={"Content-Type": "application/json"}
            )
        )
        return str(response.json()["Id"])

    def exec_start_path(self, exec_id: str) -> str:
        return f"{self.api.path_prefix}exec/{exec_id}/start"

    def exec_state(self, exec_id: str) -> tuple[bool, int | None]:
        info = self._checked(self.api.get(f"/exec/{exec_id}/json")).json()
        return bool(info.get("Running")), info.get("ExitCode")

    def close(self) -> None:
        self.client.close()


def _limits(config: ContainerConfig) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if config.memory_bytes:
        limits["memory"] = {"limit": config.memory_bytes, "swap": config.memory_bytes}
    if config.nano_cpus:
        period = 100_000
        limits["cpu"] = {"quota": config.nano_cpus * period // 1_000_000_000, "period": period}
    if config.pids:
        limits["pids"] = {"limit": config.pids}
    return limits


class PodmanProvider(ContainerProvider):
    """Podman sandboxes. Options: `base_url` (default $CONTAINER_HOST, else the rootful or the user's socket),
    `runtime` (an OCI runtime for every container, e.g. runc), `ulimits` ({name: limit}, e.g. nofile and nproc when
    Podman's defaults exceed the host's hard limits), `image`, `reap_at_start`."""

    name = "podman"

    def _connect(self) -> EngineApi:
        return PodmanApi(self.options.get("base_url"), self.options.get("runtime"), self.options.get("ulimits"))
