"""The typed check of a cluster file: the fields `asym` relies on, checked before anything starts.

A cluster file is a Ray cluster-launcher YAML (``ray up FILE``); Ray's own JSON schema
(``ray/autoscaler/ray-schema.json``) says what Ray accepts, and this module adds what we rely on:
a name, a provider we know, an SSH user, the head and worker IPs of an on-prem cluster, node types
that declare their GPUs for a cloud one, and no secret written into the file. Every problem is
one line naming the field (``provider.worker_ips: ...``); nothing has been started when it is raised.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from common.errors import UserError
from common.typed_yaml import read_yaml
from common.typed_yaml import where as line_of
from experiments.tracking_names import check_storage

PROVIDERS = ("local", "aws", "gcp", "azure")
DEFAULT_DASHBOARD_PORT = 8265
# Keys that hold secrets: they belong in the environment of the machine that runs `ray up`
# (or a cloud secret store), never in a file that is copied to every node and into logs.
_SECRET_KEY = re.compile(r"(secret|password|passwd|token|credentials|access_key)", re.IGNORECASE)
_SECRET_ASSIGNMENT = re.compile(r"[A-Z_]*(TOKEN|PASSWORD|SECRET|ACCESS_KEY)[A-Z_]*=(?!\$)[^\s;]+")


@dataclass
class AuthSchema:
    """How the launcher reaches the nodes over SSH: a user and a key *path*."""

    ssh_user: str = MISSING
    ssh_private_key: Optional[str] = None  # a path on the launching machine; required on-prem
    ssh_public_key: Optional[str] = None
    ssh_proxy_command: Optional[str] = None
    ssh_proxy_use_node_id: Optional[bool] = None


@dataclass
class ProviderSchema:
    """The provider fields we read; Ray accepts more (they pass through unchecked by us)."""

    type: str = MISSING
    head_ip: Optional[str] = None  # local: the head's address
    worker_ips: Optional[list[str]] = None  # local: every worker's address
    region: Optional[str] = None
    availability_zone: Optional[str] = None
    project_id: Optional[str] = None
    use_internal_ips: Optional[bool] = None
    cache_stopped_nodes: Optional[bool] = None


@dataclass
class NodeTypeSchema:
    """One cloud node type: the resources Ray schedules on (GPU counts are integers)."""

    node_config: dict[str, Any] = MISSING  # provider-specific: instance / machine type, disks
    resources: dict[str, int] = MISSING  # e.g. {"CPU": 192, "GPU": 8}
    min_workers: int = 0
    max_workers: Optional[int] = None
    idle_timeout_s: Optional[float] = None
    priority: Optional[int] = None
    labels: Optional[dict[str, str]] = None
    initialization_commands: Optional[list[str]] = None
    worker_setup_commands: Optional[list[str]] = None
    docker: Optional[Any] = None


@dataclass
class ClusterSchema:
    """Every top-level key of a Ray cluster-launcher file; the typed ones are those we rely on."""

    cluster_name: str = MISSING
    provider: ProviderSchema = field(default_factory=ProviderSchema)
    auth: AuthSchema = field(default_factory=AuthSchema)
    max_workers: Optional[int] = None  # required for cloud providers (checked below)
    upscaling_speed: Optional[float] = None
    idle_timeout_minutes: Optional[float] = None
    docker: Optional[Any] = None
    head_node_type: Optional[str] = None
    available_node_types: Optional[dict[str, NodeTypeSchema]] = None
    file_mounts: Optional[dict[str, str]] = None
    cluster_synced_files: Optional[list[str]] = None
    file_mounts_sync_continuously: Optional[bool] = None
    rsync_exclude: Optional[list[str]] = None
    rsync_filter: Optional[list[str]] = None
    metadata: Optional[Any] = None
    initialization_commands: Optional[list[str]] = None
    setup_commands: Optional[list[str]] = None
    head_setup_commands: Optional[list[str]] = None
    worker_setup_commands: Optional[list[str]] = None
    head_start_ray_commands: Optional[list[str]] = None
    worker_start_ray_commands: Optional[list[str]] = None
    no_restart: Optional[bool] = None


@dataclass(frozen=True)
class ClusterFile:
    """A checked cluster file: its path, the raw mapping Ray reads, and the typed view."""

    path: Path
    raw: dict[str, Any]
    typed: DictConfig

    @property
    def name(self) -> str:
        return str(self.typed.cluster_name)

    @property
    def provider(self) -> str:
        return str(self.typed.provider.type)

    @property
    def head_ip(self) -> str | None:
        return self.typed.provider.head_ip

    @property
    def dashboard_port(self) -> int:
        """The head's dashboard port, read from its `ray start --head` command (Ray's default 8265)."""
        return _flag_int(self.typed.head_start_ray_commands or [], "--dashboard-port") or DEFAULT_DASHBOARD_PORT

    @property
    def storage(self) -> str | None:
        """``metadata: {storage: PATH}``: the folder every node mounts, for `asym sweep --storage`."""
        metadata = self.raw.get("metadata") or {}
        value = metadata.get("storage") if isinstance(metadata, dict) else None
        return None if value is None else str(value)

    @property
    def max_nodes(self) -> int:
        """The most nodes the cluster can have: the head and its workers."""
        if self.provider == "local":
            return 1 + len(self.typed.provider.worker_ips or [])
        return 1 + int(self.typed.max_workers or 0)

    def gpus_per_node(self) -> dict[str, int | None]:
        """GPUs declared per node type (cloud) or per start command (on-prem; None = autodetect)."""
        if self.provider == "local":
            return {
                "head": _flag_int(self.typed.head_start_ray_commands or [], "--num-gpus"),
                "worker": _flag_int(self.typed.worker_start_ray_commands or [], "--num-gpus"),
            }
        types = self.typed.available_node_types or {}
        return {name: int(node.resources.get("GPU", 0)) for name, node in types.items()}


def load_cluster_file(path: str | Path) -> ClusterFile:
    """Read and check a cluster file; a problem is a one-line UserError naming the field."""
    path = Path(path)
    raw, lines = read_yaml(path, "cluster file", UserError, plain=True,
                           hint=": give the path of a Ray cluster YAML (see cluster/)")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a cluster file is a YAML mapping with cluster_name, provider, auth, ...")
    typed = _typed_view(path, raw, lines)
    _check_ray_schema(path, raw, lines)
    _check_semantics(path, typed, lines)
    _check_no_secrets(path, raw, lines)
    return ClusterFile(path=path, raw=raw, typed=typed)


def _at(path: Path, lines: dict[str, int], key: str) -> str:
    """``file:line`` of the field (or of its nearest ancestor in the file; the file alone at the top)."""
    return line_of(path, lines, key).split(" (")[0]


def _typed_view(path: Path, raw: dict[str, Any], lines: dict[str, int]) -> DictConfig:
    """Merge the file onto the dataclass schema: a wrong key or type names its line and field."""
    def at(key: str) -> str:
        return _at(path, lines, key)

    for key in ("provider", "auth", "available_node_types"):
        if key in raw and raw[key] is not None and not isinstance(raw[key], dict):
            raise UserError(f"{at(key)}: {key}: expected a mapping")
    for name, node in (raw.get("available_node_types") or {}).items():
        if not isinstance(node, dict):
            raise UserError(f"{at('available_node_types.' + str(name))}: available_node_types.{name}: expected a mapping")
    picked = dict(raw)
    provider = raw.get("provider")
    if isinstance(provider, dict):  # Ray lets providers carry extra keys; we type the ones we read
        picked["provider"] = {k: v for k, v in provider.items() if k in ProviderSchema.__dataclass_fields__}
    try:
        typed = OmegaConf.merge(OmegaConf.structured(ClusterSchema), picked)
    except OmegaConfBaseException as exc:
        field = _omegaconf_field(exc)
        raise UserError(f"{at(field)}: {field}: {_omegaconf_reason(exc)}") from None
    missing = sorted(OmegaConf.missing_keys(typed))
    if missing:
        raise UserError(f"{at(missing[0])}: {missing[0]}: required field is missing")
    return typed


def _omegaconf_field(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or "?"
    return str(key)


def _omegaconf_reason(exc: OmegaConfBaseException) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    if "not in" in first and "Key" in first:
        return "unknown field (a Ray cluster-launcher file has no such key)"
    if "ListConfig" in first:
        return "expected a list"
    if "DictConfig" in first or "of type" in first and "dict" in first:
        return "expected a mapping"
    return first


def _check_ray_schema(path: Path, raw: dict[str, Any], lines: dict[str, int]) -> None:
    """Ray's own schema for cluster-launcher files (the one `ray up` validates against)."""
    import jsonschema  # deferred: jsonschema
    import ray.autoscaler  # deferred: ray

    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema = json.loads(schema_path.read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(schema).iter_errors(raw))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        reason = error.message.splitlines()[0]
        if len(reason) > 160:
            reason = reason[:157] + "..."
        raise UserError(f"{_at(path, lines, where)}: {where}: {reason}")


def _check_semantics(path: Path, cfg: DictConfig, lines: dict[str, int]) -> None:
    """What Ray's schema allows but a working cluster for our sweeps needs."""

    def fail(key: str, reason: str) -> None:
        raise UserError(f"{_at(path, lines, key)}: {key}: {reason}")

    if not cfg.cluster_name.strip():
        fail("cluster_name", "must not be empty")
    if cfg.provider.type not in PROVIDERS:
        fail("provider.type", f"{cfg.provider.type!r} is not one of {', '.join(PROVIDERS)}")
    if not cfg.auth.ssh_user.strip():
        fail("auth.ssh_user", "must not be empty")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        commands = cfg[key] or []
        if commands and not any("ray start" in c for c in commands):
            fail(key, "has no `ray start` command")
        for flag in ("--num-gpus", "--dashboard-port"):
            _flag_int(commands, flag, on_error=lambda v, k=key, f=flag: fail(k, f"{f}={v!r} is not a whole number"))
    if cfg.max_workers is not None and cfg.max_workers < 0:
        fail("max_workers", "must be 0 or more")
    storage = (cfg.metadata or {}).get("storage")  # metadata is a mapping (Ray's schema checked that)
    if storage is not None:
        if not isinstance(storage, str) or not storage.strip():
            fail("metadata.storage", "must be the absolute path of a folder every node mounts")
        try:
            check_storage(storage, on_this_machine=False)
        except UserError as exc:
            fail("metadata.storage", str(exc).removeprefix(f"--storage {storage}: "))

    if cfg.provider.type == "local":
        if not cfg.provider.head_ip:
            fail("provider.head_ip", "required for an on-prem (provider: local) cluster: the head's IP")
        if cfg.provider.worker_ips is None:
            fail("provider.worker_ips", "required for an on-prem cluster: the workers' IPs ([] for a head only)")
        for i, ip in enumerate(cfg.provider.worker_ips):
            if not str(ip).strip():
                fail(f"provider.worker_ips[{i}]", "is empty")
        if cfg.provider.head_ip in list(cfg.provider.worker_ips):
            fail("provider.worker_ips", f"lists the head {cfg.provider.head_ip} as a worker")
        if not cfg.auth.ssh_private_key:
            fail("auth.ssh_private_key", "required on-prem: the path of the SSH key that reaches every node")
        if cfg.available_node_types:
            fail("available_node_types", "not supported for provider: local (declare GPUs with --num-gpus in the start commands)")
        return

    types = cfg.available_node_types
    if not types:
        fail("available_node_types", f"required for provider: {cfg.provider.type} (one entry per machine type)")
    if not cfg.head_node_type:
        fail("head_node_type", "required: the name of the head's entry in available_node_types")
    if cfg.head_node_type not in types:
        fail("head_node_type", f"{cfg.head_node_type!r} is not one of available_node_types ({', '.join(types)})")
    if cfg.max_workers is None:
        fail("max_workers", "required: the most worker nodes the launcher may start")
    for name, node in types.items():
        for resource, count in node.resources.items():
            if count < 0:
                fail(f"available_node_types.{name}.resources.{resource}", "must be 0 or more")
    if not any(node.resources.get("GPU", 0) > 0 for node in types.values()):
        fail("available_node_types", "no node type declares GPUs: set resources.GPU on the GPU node types")
    min_sum = sum(node.min_workers for node in types.values())
    if min_sum > cfg.max_workers:
        fail("max_workers", f"{cfg.max_workers} is below the sum of min_workers ({min_sum})")


def _check_no_secrets(path: Path, raw: dict[str, Any], lines: dict[str, int]) -> None:
    """A cluster file is copied to every node and echoed in logs: keys and tokens stay out of it."""
    key = raw.get("auth", {}).get("ssh_private_key") if isinstance(raw.get("auth"), dict) else None
    if isinstance(key, str) and "PRIVATE KEY" in key:
        raise UserError(f"{_at(path, lines, 'auth.ssh_private_key')}: auth.ssh_private_key: give the key's path, "
                        "not its contents")
    # file_mounts maps remote paths to local paths (e.g. Ray's own ~/.ray/auth_token): paths, not secrets
    checked = {k: v for k, v in raw.items() if k != "file_mounts"}
    for where, name in _walk_keys(checked):
        if _SECRET_KEY.search(name):
            raise UserError(
                f"{_at(path, lines, where)}: {where}: secrets do not belong in a cluster file; set them in the "
                "environment of the machine that runs `asym cluster up` or in the cloud's secret store"
            )
    for where, text in _walk_strings(raw):
        if _SECRET_ASSIGNMENT.search(text):
            raise UserError(
                f"{_at(path, lines, where)}: {where}: sets a secret inline; read it on the node from a file or "
                "secret store instead"
            )


def _walk_strings(node: Any, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk_strings(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_strings(value, f"{prefix}[{i}]")
    elif isinstance(node, str):
        yield prefix, node


def _walk_keys(node: Any, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{prefix}.{key}" if prefix else str(key)
            yield where, str(key)
            yield from _walk_keys(value, where)


def _flag_int(commands, flag: str, on_error=None) -> int | None:
    """The integer after `flag=` or `flag ` in any of the shell commands (None when absent)."""
    pattern = re.compile(re.escape(flag) + r"[= ]+([^\s;]+)")
    for command in commands:
        match = pattern.search(str(command))
        if match:
            value = match.group(1).strip("'\"")
            if value.isdigit():
                return int(value)
            if on_error is not None:
                on_error(value)
            return None
    return None
