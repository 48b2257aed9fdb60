"""Cluster files: every shipped YAML is valid for Ray's cluster launcher (Ray's own JSON schema and
its config preparation) and for our typed schema; broken files give a one-line error naming the
field, and `asym cluster up` then starts nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cluster.schema import load_cluster_file
from common.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "cluster").glob("*.yaml"))
ASYM = str(Path(sys.executable).with_name("asym"))

ONPREM = """
cluster_name: t
provider: {type: local, head_ip: 10.0.0.1, worker_ips: [10.0.0.2]}
auth: {ssh_user: u, ssh_private_key: ~/.ssh/k}
"""
CLOUD = """
cluster_name: t
max_workers: 2
provider: {type: aws, region: us-east-1}
auth: {ssh_user: ubuntu}
head_node_type: head
available_node_types:
  head: {node_config: {InstanceType: m6i.large}, resources: {CPU: 2}}
  gpu: {node_config: {InstanceType: p5.48xlarge}, resources: {CPU: 192, GPU: 8}, min_workers: 0, max_workers: 2}
"""


def test_the_shipped_cluster_files_are_there():
    names = {p.name for p in SHIPPED}
    assert {"onprem.yaml", "aws-4xh100.yaml", "aws-8xh100.yaml", "gcp-8xh100.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_pass_rays_schema_and_config_preparation(path):
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load(path.read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(raw, schema)
    validate_config(prepare_config(raw))  # what `ray up` does before touching a node


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_pass_our_schema_and_install_the_gpu_extra(path):
    cluster = load_cluster_file(path)
    commands = " ".join(cluster.typed.setup_commands)
    assert ".[gpu]" in commands, "every node installs asym with its GPU extra"
    assert "verl,gpu" not in commands and "gpu,verl" not in commands  # the CPU extra's pins clash with vLLM's
    assert any("ray start --head" in c for c in cluster.typed.head_start_ray_commands)
    gpus = cluster.gpus_per_node()
    assert any(count for count in gpus.values()), f"no node declares GPUs: {gpus}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_heads_declare_the_admission_of_verl_trials_over_several_nodes(path):
    """backends/verl/admission.py: a trial of several nodes holds asym_gpu_slot units (one
    per GPU it uses) and the one asym_verl_job unit; a head without them leaves such a trial pending."""
    from backends.verl.admission import ADMISSION_RESOURCE, JOB_RESOURCE

    raw = yaml.safe_load(path.read_text())
    types = raw.get("available_node_types") or {}
    head = types.get(raw.get("head_node_type"), {}).get("resources", {})
    if ADMISSION_RESOURCE in head:  # cloud files: the head node type's resources
        gpus = sum(t["resources"].get("GPU", 0) * t.get("max_workers", 0) for t in types.values())
        assert head[ADMISSION_RESOURCE] == gpus and head[JOB_RESOURCE] == 1, head
    else:  # on-prem: the head's `ray start --resources`
        start = " ".join(raw["head_start_ray_commands"])
        assert f'"{ADMISSION_RESOURCE}": ' in start and f'"{JOB_RESOURCE}": 1' in start, start


def test_gpu_counts_and_dashboard_port_are_read_from_the_file():
    assert load_cluster_file(ROOT / "cluster" / "aws-8xh100.yaml").gpus_per_node()["gpu8"] == 8
    assert load_cluster_file(ROOT / "cluster" / "gcp-8xh100.yaml").gpus_per_node()["gpu8"] == 8
    onprem = load_cluster_file(ROOT / "cluster" / "onprem.yaml")
    assert onprem.gpus_per_node() == {"head": 8, "worker": 8} and onprem.dashboard_port == 8265


def edit(text: str, **changes) -> str:
    """The YAML with top-level or dotted keys replaced (None deletes)."""
    data = yaml.safe_load(text)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return yaml.safe_dump(data)


BROKEN = [
    (edit(ONPREM, cluster_name=None), "cluster_name: required"),
    (edit(ONPREM, provider__worker_ips="10.0.0.2"), "provider.worker_ips: expected a list"),
    (edit(ONPREM, provider__head_ip=None), "provider.head_ip"),
    (edit(ONPREM, provider__worker_ips=None), "provider.worker_ips"),
    (edit(ONPREM, provider__type="openstack"), "provider.type"),
    (edit(ONPREM, auth__ssh_user=None), "auth.ssh_user"),
    (edit(ONPREM, auth__ssh_private_key=None), "auth.ssh_private_key"),
    (edit(ONPREM, auth__ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nabc"), "auth.ssh_private_key"),
    (edit(ONPREM, provider=3), "provider: expected a mapping"),
    (edit(ONPREM, max_workers="two"), "max_workers"),
    (edit(ONPREM, max_workers=-1), "max_workers"),
    (edit(ONPREM, head_nodes={"x": 1}), "head_nodes: unknown field"),
    (edit(ONPREM, head_start_ray_commands=["ray start --head --num-gpus=eight"]), "head_start_ray_commands"),
    (edit(ONPREM, setup_commands=["export MLFLOW_TRACKING_TOKEN=abc123"]), "setup_commands[0]"),
    (edit(ONPREM, auth__ssh_password="x"), "auth.ssh_password"),
    (edit(CLOUD, available_node_types__gpu__resources={"GPU": "eight"}), "available_node_types.gpu.resources.GPU"),
    (edit(CLOUD, available_node_types__gpu__resources={"GPU": 0}), "no node type declares GPUs"),
    (edit(CLOUD, available_node_types__gpu__node_config=None), "available_node_types.gpu.node_config: required"),
    (edit(CLOUD, head_node_type="nope"), "head_node_type"),
    (edit(CLOUD, max_workers=None), "max_workers: required"),
    (edit(CLOUD, available_node_types__gpu__min_workers=3), "max_workers: 2 is below"),
    (edit(CLOUD, available_node_types=None), "available_node_types: required"),
    (edit(CLOUD, provider__gcp_credentials={"type": "credentials_token", "credentials": "x"}), "provider.gcp_credentials"),
    (edit(ONPREM, metadata="nfs"), "metadata: 'nfs' is not of type 'object'"),
    (edit(ONPREM, metadata={"storage": "shared/asym"}), "metadata.storage: give the cluster's shared folder as an absolute path"),
    (edit(ONPREM, metadata={"storage": "s3://bucket/asym"}), "metadata.storage: only a mounted folder"),
    (edit(ONPREM, metadata={"storage": ""}), "metadata.storage: must be the absolute path"),
    ("cluster_name: [unclosed\n", "not valid YAML"),
    ("- a\n- list\n", "a YAML mapping"),
]


@pytest.mark.parametrize("text,expected", BROKEN, ids=[e for _, e in BROKEN])
def test_broken_files_are_one_line_errors_naming_the_field(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_cluster_file(path)
    message = str(info.value)
    assert expected in message and "\n" not in message, message
    assert "abc123" not in message and "BEGIN OPENSSH" not in message


def test_the_valid_templates_above_load(tmp_path):
    for text in (ONPREM, CLOUD):
        (tmp_path / "ok.yaml").write_text(text)
        assert load_cluster_file(tmp_path / "ok.yaml").name == "t"


def test_storage_and_size_of_a_cluster_file(tmp_path):
    (tmp_path / "c.yaml").write_text(edit(ONPREM, metadata={"storage": "/mnt/asym-shared"}))
    onprem = load_cluster_file(tmp_path / "c.yaml")
    assert onprem.storage == "/mnt/asym-shared" and onprem.max_nodes == 2
    (tmp_path / "c.yaml").write_text(CLOUD)
    cloud = load_cluster_file(tmp_path / "c.yaml")
    assert cloud.storage is None and cloud.max_nodes == 3
    for path in SHIPPED:  # every shipped multi-node file names its shared folder
        shipped = load_cluster_file(path)
        assert shipped.max_nodes > 1 and shipped.storage and shipped.storage.startswith("/"), path.name


def test_a_multi_node_cluster_file_without_storage_is_refused_before_submitting(tmp_path):
    (tmp_path / "c.yaml").write_text(ONPREM)  # head + 1 worker, no metadata.storage
    proc = run_cli(["sweep", "grid", "--alpha-pos", "0", "--smoke", "--cluster", "c.yaml"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "2 nodes" in proc.stderr and "--storage" in proc.stderr and "metadata" in proc.stderr
    assert not (tmp_path / ".asym").exists()


def run_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "raytmp"), "HOME": str(tmp_path / "home")}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([ASYM, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("command", ["up", "down"])
def test_cluster_up_with_a_broken_file_exits_2_and_starts_nothing(tmp_path, command):
    (tmp_path / "home").mkdir()
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit(ONPREM, provider__worker_ips="10.0.0.2"))
    done = run_cli(["cluster", command, str(bad)], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "provider.worker_ips" in lines[0]
    # `ray up` keeps a lock and a state file per cluster under Ray's temp folder, and its
    # config cache under ~/: none of them exists, so the launcher never ran.
    assert not (tmp_path / "raytmp").exists()
    assert not any((tmp_path / "home").iterdir())


def test_cluster_up_needs_the_ssh_key_file_to_exist(tmp_path):
    (tmp_path / "home").mkdir()
    ok = tmp_path / "ok.yaml"
    ok.write_text(edit(ONPREM, auth__ssh_private_key=str(tmp_path / "missing_key")))
    done = run_cli(["cluster", "up", str(ok)], tmp_path)
    assert done.returncode == 2 and "auth.ssh_private_key: no key file" in done.stderr
    assert not (tmp_path / "raytmp").exists()


def test_missing_cluster_file_is_one_line(tmp_path):
    done = run_cli(["cluster", "status", str(tmp_path / "nope.yaml")], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: cluster file {tmp_path / 'nope.yaml'} does not exist: give the path of a Ray cluster YAML (see cluster/)"


def test_launcher_runs_rays_own_up_and_down_on_the_absolute_path():
    from cluster.launcher import launcher_command

    cluster = load_cluster_file(ROOT / "cluster" / "aws-8xh100.yaml")
    up = launcher_command("up", cluster)
    assert Path(up[0]).name == "ray" and up[1:] == ["up", "-y", str((ROOT / "cluster" / "aws-8xh100.yaml").resolve())]
    assert launcher_command("down", cluster)[1] == "down"


@pytest.mark.parametrize("text,needle", [
    (edit(CLOUD, head_node_type="nope"), "head_node_type: nope"),  # our semantic checks
    (edit(ONPREM, setup_commands=["export MLFLOW_TRACKING_TOKEN=abc123"]), "MLFLOW_TRACKING_TOKEN"),  # secrets
    (edit(ONPREM, metadata="nfs"), "metadata: nfs"),  # Ray's own schema
])
def test_every_check_names_the_line_of_its_field(tmp_path, text, needle):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_cluster_file(path)
    located = re.match(rf"{re.escape(str(path))}:(\d+): ", str(info.value))
    assert located, str(info.value)
    assert needle in text.splitlines()[int(located.group(1)) - 1], (str(info.value), text)
