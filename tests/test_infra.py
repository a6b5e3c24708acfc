"""infra/: every YAML parses, names agree across compose, Kubernetes and prefect.yaml, the server
settings are real Prefect settings, and the Prefect server accepts the kubernetes base job template.
(No cluster or Docker engine here: `kubectl kustomize infra/` renders the same, checked by hand.)"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import yaml

from conftest import REPO

INFRA = REPO / "infra"
K8S_TEMPLATE = INFRA / "k8s" / "base-job-template.json"


def env_pairs(name: str) -> dict[str, str]:
    lines = (INFRA / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def k8s_objects() -> list[dict]:
    kustomization = yaml.safe_load((INFRA / "kustomization.yaml").read_text())
    return [doc for path in kustomization["resources"] for doc in yaml.safe_load_all((INFRA / path).read_text()) if doc]


def references(node):
    """(kind, name, key) of every ConfigMap, Secret, ServiceAccount and volume claim a manifest names."""
    if isinstance(node, list):
        for item in node:
            yield from references(item)
    elif isinstance(node, dict):
        for field, value in node.items():
            if field in ("configMapRef", "configMap"):
                yield "ConfigMap", value["name"], None
            elif field == "secretRef":
                yield "Secret", value["name"], None
            elif field == "secretKeyRef":
                yield "SecretKey", value["name"], value["key"]
            elif field == "serviceAccountName":
                yield "ServiceAccount", value, None
            elif field == "claimName":
                yield "PersistentVolumeClaim", value, None
            else:
                yield from references(value)


def test_every_yaml_in_infra_parses():
    files = sorted(INFRA.rglob("*.y*ml"))
    assert len(files) >= 9
    for path in files:
        list(yaml.safe_load_all(path.read_text()))


def test_server_env_files_hold_real_prefect_settings_and_the_audit_retention(monkeypatch):
    from prefect.settings import Settings

    from tasks.audit.exports import AUDIT_RETENTION_DAYS

    pairs = {**env_pairs("prefect-server.env"), **env_pairs("prefect-redis.env")}
    for key, value in pairs.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    applied = settings.to_environment_variables(exclude_unset=True)
    for key in pairs:  # prefect-redis's own settings are not Prefect's; the rest must resolve (or alias)
        assert key.startswith("PREFECT_REDIS_MESSAGING_") or any(
            name.endswith(key.removeprefix("PREFECT_")) for name in applied), f"{key} is not a Prefect setting"
    vacuum = settings.server.services.db_vacuum
    assert "flow_runs" not in vacuum.enabled_vacuum_types  # runs, logs, artifacts are never deleted
    assert vacuum.retention_period == settings.server.events.retention_period == timedelta(days=AUDIT_RETENTION_DAYS)


def test_compose_services_files_and_pool():
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    services = compose["services"]
    pool = yaml.safe_load((REPO / "prefect.yaml").read_text())["definitions"]["work_pool"]["name"]
    assert f"--pool {pool} " in services["worker"]["command"] and pool in services["deploy"]["command"]
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
        for env_file in service.get("env_file", []):
            assert (INFRA / env_file).is_file(), (name, env_file)
        if "build" in service:
            assert (INFRA / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert services["prefect-api"]["env_file"] == ["prefect-server.env", "prefect-redis.env"]
    init = INFRA / services["postgres"]["volumes"][1].split(":")[0]
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm" in (init / "01-tradeops.sql").read_text()


def test_kubernetes_names_are_consistent():
    kustomization = yaml.safe_load((INFRA / "kustomization.yaml").read_text())
    objects = k8s_objects()
    defined = {(o["kind"], o["metadata"]["name"]) for o in objects}
    defined |= {("ConfigMap", g["name"]) for g in kustomization["configMapGenerator"]}
    for generator in kustomization["configMapGenerator"]:
        for path in generator.get("envs", []) + generator.get("files", []):
            assert (INFRA / path).is_file(), path
    secret_keys = {o["metadata"]["name"]: set(o["stringData"]) for o in objects if o["kind"] == "Secret"}
    assert {o["metadata"].get("namespace", "tradeops") for o in objects if o["kind"] != "Namespace"} == {"tradeops"}

    template = json.loads(K8S_TEMPLATE.read_text())
    for kind, name, key in references([*objects, template["job_configuration"]["job_manifest"]]):
        if kind == "SecretKey":
            assert key in secret_keys.get(name, set()), (name, key)
        elif not name.startswith("{{"):
            assert (kind, name) in defined, (kind, name)
    defaults = {k: v.get("default") for k, v in template["variables"]["properties"].items()}
    assert ("ServiceAccount", defaults["service_account_name"]) in defined and defaults["namespace"] == "tradeops"
    for host in ("prefect-server", "postgres", "redis"):  # hosts the env files and commands name
        assert ("Service", host) in defined


def test_deploy_job_puts_every_deployment_on_the_kubernetes_pool():
    job = next(o for o in k8s_objects() if o["kind"] == "Job")
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    pattern, pool = re.search(r"sed 's/(.+)/name: ([\w-]+)/'", script).groups()
    rewritten = yaml.safe_load(re.sub(pattern.replace("$", "") + "$", f"name: {pool}",
                                      (REPO / "prefect.yaml").read_text(), flags=re.M))
    assert {d["work_pool"]["name"] for d in rewritten["deployments"]} == {pool}
    assert f"--pool {pool} --type kubernetes" in " ".join(
        next(o for o in k8s_objects() if o["metadata"]["name"] == "tradeops-worker" and o["kind"] == "Deployment")
        ["spec"]["template"]["spec"]["containers"][0]["command"])


@pytest.mark.prefect  # creates a work pool on the session's Prefect server
def test_prefect_server_accepts_the_kubernetes_base_job_template():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    template = json.loads(K8S_TEMPLATE.read_text())
    with get_client(sync_client=True) as client:
        pool = client.create_work_pool(WorkPoolCreate(name="infra-test-k8s", type="kubernetes",
                                                      base_job_template=template), overwrite=True)
        try:
            defaults = {k: v.get("default") for k, v in pool.base_job_template["variables"]["properties"].items()}
            assert defaults["namespace"] == "tradeops" and defaults["service_account_name"] == "tradeops-flow-runner"
        finally:
            client.delete_work_pool("infra-test-k8s")
