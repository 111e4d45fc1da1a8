"""The deployment files say what the README says (there is no Docker engine or cluster
here, so their invariants are read from the files themselves)."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.app.settings import load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def docs(path: Path) -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": d
            for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d}


def test_sqlite_deployment_is_one_replica_recreated():
    dep = docs(DEPLOY / "kubernetes" / "alvh.yaml")["Deployment/alvh"]["spec"]
    assert dep["replicas"] == 1 and dep["strategy"]["type"] == "Recreate"


def test_postgres_deployment_runs_two_replicas_rolling_with_the_url_from_a_secret():
    k = docs(DEPLOY / "kubernetes" / "alvh-postgres.yaml")
    dep = k["Deployment/alvh"]["spec"]
    assert dep["replicas"] == 2
    assert dep["strategy"] == {"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod = dep["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["secrets"] == "/run/secrets"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "alvh-secrets"
    assert "emptyDir" in volumes["data"]  # the state is in PostgreSQL, not on the pod
    assert {"alvh_database_url", "alvh_unsubscribe_secret"} <= set(
        k["Secret/alvh-secrets"]["stringData"])
    assert not any("DATABASE" in key for key in k["ConfigMap/alvh-config"]["data"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "tcpSocket" in container["livenessProbe"]
    assert k["PodDisruptionBudget/alvh"]["spec"]["minAvailable"] == 1
    assert k["StatefulSet/alvh-postgres"]["spec"]["replicas"] == 1


def test_compose_runs_two_instances_on_one_database():
    compose = yaml.safe_load((DEPLOY / "docker-compose.postgres.yml").read_text())
    services = compose["services"]
    bots = [s for name, s in services.items() if name.startswith("alvh-")]
    assert len(bots) == 2
    assert all("alvh_database_url" in s["secrets"] for s in bots)
    assert all("alvh_unsubscribe_secret" in s["secrets"] for s in bots)  # one key for both
    assert all(s["depends_on"]["postgres"]["condition"] == "service_healthy" for s in bots)
    ports = [s["ports"][0] for s in bots]
    assert len(set(ports)) == 2 and all(p.startswith("127.0.0.1:") for p in ports)
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/")


def test_the_database_url_is_read_from_a_secrets_file_and_its_password_redacted(
        tmp_path, no_alvh_env):
    (tmp_path / "alvh_database_url").write_text(
        "postgresql://alvh:s3cr3t-pw@alvh-postgres:5432/alvh")
    settings = load_settings(env_file=None, secrets_dir=tmp_path)
    assert settings.database_url == "postgresql://alvh:s3cr3t-pw@alvh-postgres:5432/alvh"
    assert "s3cr3t-pw" in settings.secret_values()  # the log filter removes it
    assert "s3cr3t-pw" not in settings.store_url_shown
