"""The production manifests (deploy/k8s) hold together: valid YAML; PgBouncer pools transactions with prepared
statements kept; relays (LISTEN) and migrations go straight to Postgres; Postgres has room for what PgBouncer
and the direct clients may open; TLS at the entry; NetworkPolicies name only pods that exist, and every
workload that talks to Postgres or Kafka is let through (a new Deployment left out would be cut off)."""
from __future__ import annotations

import configparser
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"


@cache
def docs() -> list[dict[str, Any]]:
    return [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def one(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs() if d["kind"] == kind and d["metadata"]["name"] == name)


def workloads() -> dict[str, dict[str, Any]]:
    """app label -> the pod spec of every Deployment, StatefulSet, Job and CronJob."""
    out: dict[str, dict[str, Any]] = {}
    for d in docs():
        tpl = (d["spec"]["jobTemplate"]["spec"]["template"] if d["kind"] == "CronJob"
               else d["spec"].get("template") if d["kind"] in ("Deployment", "StatefulSet", "Job") else None)
        if tpl is not None:
            out[tpl["metadata"]["labels"]["app"]] = tpl["spec"]
    return out


def env_of(spec: dict[str, Any]) -> dict[str, str]:
    config = one("ConfigMap", "mch-config")["data"]
    c = spec["containers"][0]
    own = {e["name"]: e["value"] if "value" in e else config.get(e["valueFrom"].get("configMapKeyRef", {}).get("key"))
           for e in c.get("env", [])}
    uses_config = any(r.get("configMapRef", {}).get("name") == "mch-config" for r in c.get("envFrom", []))
    return {**(config if uses_config else {}), **own}


def pgbouncer_ini() -> configparser.ConfigParser:
    ini = configparser.ConfigParser(inline_comment_prefixes=(";",), comment_prefixes=(";", "#"))
    ini.read_string(one("ConfigMap", "pgbouncer-config")["data"]["pgbouncer.ini"])
    return ini


def allowed_from(target_app: str, port: int) -> set[str]:
    """The app labels NetworkPolicies let reach `target_app` on `port`."""
    out: set[str] = set()
    for d in docs():
        if d["kind"] != "NetworkPolicy":
            continue
        sel = d["spec"]["podSelector"]
        apps = set(sel.get("matchLabels", {}).values())
        for e in sel.get("matchExpressions", []):
            apps |= set(e["values"])
        if target_app not in apps:
            continue
        for rule in d["spec"].get("ingress", []):
            if port not in {p["port"] for p in rule.get("ports", [])}:
                continue
            for peer in rule.get("from", []):
                ps = peer.get("podSelector", {})
                out |= set(ps.get("matchLabels", {}).values())
                for e in ps.get("matchExpressions", []):
                    out |= set(e["values"])
    return out


def test_pgbouncer_pools_transactions_and_keeps_prepared_statements() -> None:
    ini = pgbouncer_ini()["pgbouncer"]
    assert ini["pool_mode"] == "transaction"
    # asyncpg and SQLAlchemy's asyncpg dialect prepare named statements: PgBouncer >= 1.21 must track them
    assert int(ini["max_prepared_statements"]) > 0
    image = one("Deployment", "pgbouncer")["spec"]["template"]["spec"]["containers"][0]["image"]
    major, minor = (int(x) for x in re.search(r":(\d+)\.(\d+)", image).groups())  # type: ignore[union-attr]
    assert (major, minor) >= (1, 21), image


def test_relays_and_migrations_go_straight_to_postgres_the_others_through_pgbouncer() -> None:
    for app, spec in workloads().items():
        env = env_of(spec)
        if "MCH_PG_HOST" not in env:
            continue
        direct = app.endswith("-relay") or app == "mch-migrate"
        assert env["MCH_PG_HOST"].split(".")[0] == ("postgres" if direct else "pgbouncer"), app
        assert env["MCH_PG_PORT"] == ("5432" if direct else "6432"), app
        assert "MCH_PROCESS_NAME" in env or app in ("mch-migrate", "grafana"), f"{app} names no connections"


def test_postgres_has_room_for_pgbouncer_and_the_direct_clients() -> None:
    ini = pgbouncer_ini()["pgbouncer"]
    replicas = one("Deployment", "pgbouncer")["spec"]["replicas"]
    databases = 5  # registry, screening, certificates, indicators, auth (grafana reads indicators)
    assert int(ini["default_pool_size"]) + int(ini["reserve_pool_size"]) <= int(ini["max_db_connections"])
    per_bouncer = databases * int(ini["max_db_connections"])
    relays = [a for a in workloads() if a.endswith("-relay")]
    direct = 2 * len(relays) + 1 + 1  # each relay's pool and listener; a migration; a base backup
    conf = one("ConfigMap", "postgres-config")["data"]["postgresql.conf"]
    max_connections = int(re.search(r"^max_connections = (\d+)", conf, re.M).group(1))  # type: ignore[union-attr]
    assert replicas * per_bouncer + direct + 10 <= max_connections  # 10: superuser_reserved and operators
    assert re.search(r"^archive_mode = on", conf, re.M) and re.search(r"^wal_level = replica", conf, re.M)


def test_tls_ends_at_the_entry_for_every_api() -> None:
    ing = one("Ingress", "mch")
    tls_hosts = {h for t in ing["spec"]["tls"] for h in t["hosts"]}
    backends = {r["http"]["paths"][0]["backend"]["service"]["name"]: r["host"] for r in ing["spec"]["rules"]}
    for svc in ("registry", "screening", "certificates", "indicators"):
        assert backends[f"{svc}-api"] in tls_hosts
    assert all(t["secretName"] for t in ing["spec"]["tls"])


def test_network_policies_let_through_exactly_the_platform_flows() -> None:
    apps = set(workloads())
    assert one("NetworkPolicy", "default-deny-ingress")["spec"]["podSelector"] == {}
    hosts = {a: env_of(s).get("MCH_PG_HOST", "") for a, s in workloads().items()}
    users_of_pgbouncer = {a for a, h in hosts.items() if h.startswith("pgbouncer")}
    users_of_postgres = {a for a, h in hosts.items() if h.startswith("postgres")}
    kafka_clients = {a for a in apps if a.endswith("-relay") or "-consumer" in a}
    assert users_of_pgbouncer <= allowed_from("pgbouncer", 6432)
    assert users_of_postgres | {"pgbouncer", "postgres-backup"} <= allowed_from("postgres", 5432)
    assert kafka_clients <= allowed_from("kafka", 9092)
    # the APIs are not Kafka clients, and nothing but PgBouncer and the direct clients reach Postgres
    assert not {a for a in apps if a.endswith("-api")} & allowed_from("kafka", 9092)
    assert allowed_from("postgres", 5432) <= users_of_postgres | {"pgbouncer", "postgres-backup"}
    # every name a policy mentions is a workload that exists (a typo would silently cut a flow)
    named = set().union(*(allowed_from(a, p) for a in apps for p in (5432, 6432, 8000, 9090, 9092, 9093, 9300)))
    assert named <= apps, named - apps


def test_the_console_is_reached_through_the_entry_and_reaches_only_the_apis() -> None:
    """The certificate office console (issue 16): TLS at the entry, Secure cookies, its keys from a Secret, the
    four APIs' in-cluster addresses, no database or broker; the APIs let it in, and it lets in only the entry."""
    spec = workloads()["console"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["MCH_CONSOLE_SECURE_COOKIES"] == "true" and env["MCH_CONSOLE_PUBLIC_URL"].startswith("https://")
    for svc in ("registry", "screening", "certificates", "indicators"):
        host = env[f"MCH_CONSOLE_{svc.upper()}_URL"].removeprefix("http://").split(".")[0]
        one("Service", host)  # a Service of that name exists
    keys = {v["name"]: v for v in spec["volumes"]}["keys"]["secret"]["secretName"]
    assert all(env[k].startswith("/keys/") for k in env if k.endswith("_FILE")) and keys
    assert "MCH_PG_HOST" not in env_of(spec) and "console" not in allowed_from("kafka", 9092)
    assert "console" in allowed_from("certificates-api", 8000) and "console" in allowed_from("registry-api", 8000)
    ing = one("Ingress", "mch")
    host = next(r["host"] for r in ing["spec"]["rules"]
                if r["http"]["paths"][0]["backend"]["service"]["name"] == "console")
    assert host in {h for t in ing["spec"]["tls"] for h in t["hosts"]}
    assert env["MCH_CONSOLE_PUBLIC_URL"] == f"https://{host}"
