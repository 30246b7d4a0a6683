"""deploy/: what can be checked without Docker or a cluster. The compose file and every
Kubernetes manifest parse and agree with the app (probe paths it serves, its port, its
settings, a non-root user); the systemd unit passes `systemd-analyze verify`; the
image's health check command works against a running Coach."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from bot.app import build_app
from bot.channels import api
from bot.channels import web as webchat
from bot.config import Settings
from bot.services import Services

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def setting(name: str) -> str:
    """COACH_DB_POOL_SIZE -> db_pool_size, failing if Coach has no such setting."""
    assert name.startswith("COACH_"), name
    field = name.removeprefix("COACH_").lower()
    assert field in Settings.model_fields, f"{name} is not a Coach setting"
    return field


def settings_from(env: dict[str, Any]) -> Settings:
    """Settings as Coach would read them from these variables (validating every value)."""
    return Settings(_env_file=None, **{setting(k): v for k, v in env.items()})  # type: ignore[call-arg]


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def routes(services: Services) -> set[str]:
    app = build_app(services)
    app.on_cleanup.clear()
    return {resource.canonical for resource in app.router.resources()}


def dockerfile() -> list[str]:
    """Dockerfile instructions, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def instruction(name: str) -> list[str]:
    return [line[len(name) + 1 :] for line in dockerfile() if line.startswith(name + " ")]


def image_uid() -> int:
    (user,) = instruction("USER")
    return int(user.split(":")[0])


# --- every COACH_* name in deploy/ ---------------------------------------------------


def test_every_coach_variable_in_deploy_is_a_setting() -> None:
    found = {
        (path.relative_to(ROOT).as_posix(), name)
        for path in DEPLOY.rglob("*")
        if path.is_file()
        for name in re.findall(r"\bCOACH_[A-Z0-9_]+\b", path.read_text(encoding="utf-8"))
    }
    assert len({path for path, _ in found}) >= 6  # the scan did look at the files
    unknown = sorted(
        (path, name)
        for path, name in found
        if name.removeprefix("COACH_").lower() not in Settings.model_fields
    )
    assert unknown == []


# --- Dockerfile ----------------------------------------------------------------------


def test_dockerfile_builds_slim_runs_non_root_and_serves_on_the_port() -> None:
    assert instruction("FROM") == ["python:3.11-slim AS build", "python:3.11-slim"]
    for copied in ("pyproject.toml", "README.md", "bot/", "dialogs/", "content/"):
        assert any(copied in line for line in instruction("COPY"))
        assert (ROOT / copied).exists()
    assert any("pip install ." in line for line in instruction("RUN"))
    assert image_uid() >= 1000  # not root, not a system account of the base image
    env = " ".join(instruction("ENV"))
    port = re.search(r"COACH_PORT=(\d+)", env)
    assert port is not None
    assert instruction("EXPOSE") == [port.group(1)]
    assert int(port.group(1)) == Settings.model_fields["port"].default
    assert json.loads(instruction("CMD")[0]) == ["coach", "serve", "--host", "0.0.0.0"]
    (healthcheck,) = instruction("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "curl" not in healthcheck


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    for pattern in ("**/.env", ".git", "**/.venv", "var", "*.db"):
        assert pattern in ignored


def health_check_command() -> list[str]:
    (healthcheck,) = instruction("HEALTHCHECK")
    command: list[str] = json.loads(healthcheck[healthcheck.index("CMD ") + 4 :])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


async def test_the_image_health_check_command_works_against_coach(
    aiohttp_client: Any, services: Services
) -> None:
    app = build_app(services)
    app.on_cleanup.clear()
    client: TestClient[Any, Any] = await aiohttp_client(app)
    port = client.server.port
    assert port is not None

    def check(on_port: int) -> int:
        return subprocess.run(
            health_check_command(),
            env={"COACH_PORT": str(on_port)},
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode

    # The server runs in this test's event loop: run the probe in a thread.
    assert await asyncio.to_thread(check, port) == 0
    assert await asyncio.to_thread(check, 1) != 0  # nothing listens there: unhealthy


# --- compose.yaml --------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return data


def coach_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def test_compose_runs_two_coach_replicas_on_postgresql() -> None:
    services = compose()["services"]
    replicas = coach_services()
    assert sorted(replicas) == ["coach-1", "coach-2"]
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    secrets = env_file(DEPLOY / "env.example")
    for name, service in replicas.items():
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        # Secrets come from the env file, the rest from the compose file.
        assert service["env_file"] == [".env"]
        env = dict(service["environment"])
        assert {"COACH_API_TOKEN", "COACH_SECRET_KEY"} <= set(secrets), name
        settings = settings_from(
            {k: v for k, v in {**secrets, **env}.items() if k.startswith("COACH_")}
        )
        assert settings.async_database_url.startswith("postgresql+asyncpg://coach:")
        assert "@postgres:5432/coach" in settings.database_url
        assert service["expose"] == [str(settings.port)]
    # Every ${VARIABLE} the file uses is in env.example or has a default.
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for name, rule in re.findall(r"\$\{(\w+)(:?[-?][^}]*)?\}", text):
        assert name in secrets or rule.startswith((":-", "-")), name


def test_the_proxy_balances_both_replicas_and_checks_readiness(services: Services) -> None:
    proxy = compose()["services"]["proxy"]
    assert proxy["image"].startswith("caddy:")
    mounted = {v.split(":")[0]: v.split(":")[1] for v in proxy["volumes"]}
    assert mounted["./Caddyfile"] == "/etc/caddy/Caddyfile"
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    port = settings_from(dict(coach_services()["coach-1"]["environment"])).port
    upstreams = re.search(r"^\s*reverse_proxy ([^{\n]+)\{", caddyfile, re.MULTILINE)
    assert upstreams is not None
    assert upstreams.group(1).split() == [f"{name}:{port}" for name in sorted(coach_services())]
    health = re.search(r"health_uri (\S+)", caddyfile)
    assert health is not None
    assert health.group(1) == "/readyz"
    assert health.group(1) in routes(services)
    assert "respond /metrics 404" in caddyfile


# --- Kubernetes ----------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    """kind -> the manifest (one of each here), from every YAML file in deploy/k8s."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert doc["kind"] not in found, f"two {doc['kind']} manifests"
            found[doc["kind"]] = doc
    return found


def test_kubernetes_manifests_parse_and_are_complete() -> None:
    found = manifests()
    assert set(found) == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Kustomization",
    }
    listed = found["Kustomization"]["resources"]
    assert all((K8S / name).is_file() for name in listed)
    # The Secret is an example: a real one is created by hand, never applied from git.
    assert "secret.example.yaml" not in listed
    assert {p.name for p in K8S.glob("*.yaml")} - set(listed) == {
        "secret.example.yaml",
        "kustomization.yaml",
    }


def test_the_deployment_runs_two_locked_down_replicas_probed_on_our_routes(
    services: Services,
) -> None:
    found = manifests()
    deployment = found["Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["containers"]

    # Settings: the ConfigMap holds no secret, the Secret holds the secrets; both
    # are loaded whole, and together they are valid settings for Coach.
    config = found["ConfigMap"]["data"]
    secret = found["Secret"]["stringData"]
    assert {"COACH_API_TOKEN", "COACH_SECRET_KEY", "COACH_DATABASE_URL"} <= set(secret)
    assert not set(config) & set(secret)
    assert {
        ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]
    } == {
        found["ConfigMap"]["metadata"]["name"],
        found["Secret"]["metadata"]["name"],
    }
    settings = settings_from({**config, **secret})
    assert settings.async_database_url.startswith("postgresql+asyncpg://")

    # The port Coach listens on is the one the probes and the Service use.
    (port,) = container["ports"]
    assert port["containerPort"] == settings.port
    served = routes(services)
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= served
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in served
    assert int(annotations["prometheus.io/port"]) == settings.port
    service = found["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == port["name"]
    assert container["args"] == ["coach", "serve", "--host", "0.0.0.0"]

    # Non-root (the image's user), read-only root, /tmp the only writable place.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid()
    hardened = container["securityContext"]
    assert hardened["readOnlyRootFilesystem"] is True
    assert hardened["allowPrivilegeEscalation"] is False
    assert hardened["capabilities"]["drop"] == ["ALL"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mount["name"]]
    resources = container["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()


# --- whose X-Forwarded-Proto the replicas believe (COACH_TRUSTED_PROXY) ---------------

EVERYWHERE = {ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")}
OUTSIDE = "203.0.113.7"  # TEST-NET-3 (RFC 5737): a client on the internet


def cookie_is_secure(services: Services, settings: Settings, peer: str) -> bool:
    """Whether Coach with these settings marks the web chat's cookie Secure for a request
    that `peer` passes on with X-Forwarded-Proto: https (bot/channels/web.py)."""
    app = web.Application()
    app[api.SERVICES] = dataclasses.replace(services, settings=settings)
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default
    )
    request = make_mocked_request(
        "GET", "/", headers={"X-Forwarded-Proto": "https"}, app=app, transport=transport
    )
    return webchat.used_https(request)


def some_address(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(next(iter(network.hosts()), network.network_address))


def test_compose_replicas_believe_caddy_the_only_way_in(services: Services) -> None:
    for name, service in coach_services().items():
        env = dict(service["environment"])
        assert "COACH_TRUSTED_PROXY" in env, f"{name}: behind Caddy's TLS, the cookie is not Secure"
        settings = settings_from(env)  # the app's own parser: a bad entry fails here
        networks = settings.trusted_proxy_networks
        assert networks, f"{name}: COACH_TRUSTED_PROXY={env['COACH_TRUSTED_PROXY']} trusts no one"
        if EVERYWHERE & set(networks):
            # "true" believes any peer: right only while Caddy is the one that reaches it.
            assert "ports" not in service, f"{name} publishes a port: trust Caddy's address only"
            assert "network_mode" not in service, f"{name} leaves the project's network"
        assert cookie_is_secure(services, settings, some_address(networks[0]))


def test_kubernetes_replicas_believe_the_pod_network(services: Services) -> None:
    config = manifests()["ConfigMap"]["data"]
    assert "COACH_TRUSTED_PROXY" in config, "behind the Ingress's TLS, the cookie is not Secure"
    settings = settings_from(config)
    networks = settings.trusted_proxy_networks
    assert networks, f"COACH_TRUSTED_PROXY={config['COACH_TRUSTED_PROXY']} trusts no one"
    # A pod network (the Ingress controller's pods move), never "true": every pod reaches
    # a ClusterIP Service, and anyone a NodePort.
    assert all(network.is_private for network in networks), networks
    ingress_pod = some_address(networks[0])
    assert cookie_is_secure(services, settings, ingress_pod)
    assert not cookie_is_secure(services, settings, OUTSIDE)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_manifests() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout)]
    assert sorted(kinds) == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]


# --- systemd -------------------------------------------------------------------------


def unit() -> dict[str, list[str]]:
    """The unit's settings; a key given twice (SystemCallFilter=) keeps both values."""
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / "coach.service").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_systemd_unit_is_hardened_and_keeps_sqlite_in_its_state_directory() -> None:
    found = unit()
    assert found["User"] == ["coach"]
    assert found["StateDirectory"] == ["coach"]
    assert found["ProtectSystem"] == ["strict"]
    assert found["Restart"] == ["on-failure"]
    assert found["NoNewPrivileges"] == ["yes"]
    assert found["EnvironmentFile"] == ["-/etc/coach/coach.env"]
    env = dict(value.split("=", 1) for value in found["Environment"])
    settings = settings_from(
        {**{k: v for k, v in env.items() if k.startswith("COACH_")}}
        | env_file(DEPLOY / "systemd" / "coach.env.example")
    )
    # The SQLite file lives in the one directory ProtectSystem=strict leaves writable.
    assert settings.database_url == "sqlite:////var/lib/coach/coach.db"
    assert found["WorkingDirectory"] == ["/var/lib/coach"]
    assert settings.is_loopback
    assert found["ExecStart"][0].endswith("coach serve")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    text = (DEPLOY / "systemd" / "coach.service").read_text(encoding="utf-8")
    # verify checks that ExecStart's program exists; /opt/coach is not installed here.
    local = tmp_path / "coach.service"
    local.write_text(text.replace("/opt/coach/bin/coach", shutil.which("true") or "/bin/true"))
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    # Exposure at most 2.0 of 10 ("OK" in systemd's words; the scale is in tenths here).
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert security.returncode == 0, security.stdout[-500:]
