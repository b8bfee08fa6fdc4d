"""docker-compose.yml: it resolves, and its services, listeners,
healthchecks, dependencies, volumes and profile are the ones DEPLOY.md
promises.

No Docker engine runs here, so nothing is started: `docker-compose config`
(Debian's docker-compose, installed by dev/deps test) or `docker compose
config` validates the file against the Compose schema and resolves the
variables; the checks then read the resolved model. Without either CLI the
checks read the file with PyYAML and resolve ${VAR:-default} themselves.
"""
import os
import re
import shutil
import subprocess

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML (python3-yaml) is needed")

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPOSE = os.path.join(SRC, "docker-compose.yml")
DOCKERFILE = os.path.join(SRC, "Dockerfile")

# Variables of the caller's shell must not change what is checked.
_VARS = ("KAFKA_BROKERS", "YTK_DB", "KAFKA_EXTERNAL_PORT", "HTTPD_PORT",
         "KAFKA_IMAGE", "YTK_PARTITIONS", "COMPOSE_PROFILES", "KAFKA_UI_PORT",
         "COMPOSE_FILE", "COMPOSE_PROJECT_NAME")


def _env(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in _VARS}
    env.update(overrides)
    return env


def _compose_cli():
    """The argv prefix of a compose CLI that can run `config` (the Compose
    v2 plugin first, then Debian's docker-compose 1.29), or None."""
    if shutil.which("docker"):
        r = subprocess.run(["docker", "compose", "version"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


_INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _interpolate(node, env):
    if isinstance(node, dict):
        return {k: _interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env) for v in node]
    if isinstance(node, str):
        def sub(m):
            if m.group(0) == "$$":
                return "$"
            value = env.get(m.group(1))
            return value if value else (m.group(2) or "")
        return _INTERP.sub(sub, node)
    return node


def resolved(**env):
    """The compose model with the profile postgres active, resolved with the
    given environment."""
    cli = _compose_cli()
    if cli:
        r = subprocess.run(cli + ["-f", COMPOSE, "--profile", "postgres",
                                  "config"],
                           capture_output=True, text=True, env=_env(**env),
                           cwd=SRC)
        assert r.returncode == 0, "compose config failed:\n" + r.stderr
        return yaml.safe_load(r.stdout)
    with open(COMPOSE) as f:
        raw = yaml.safe_load(f)
    return _interpolate({k: v for k, v in raw.items()
                         if not k.startswith("x-")}, _env(**env))


@pytest.fixture(scope="module")
def model():
    return resolved()


def environment(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def ports(svc):
    """(host_ip, published, target) of each published port."""
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append((p.get("host_ip", ""), str(p.get("published")),
                        str(p.get("target"))))
            continue
        parts = str(p).split("/")[0].split(":")
        ip = parts[0] if len(parts) == 3 else ""
        out.append((ip, parts[-2], parts[-1]))
    return out


def depends(svc):
    dep = svc.get("depends_on") or {}
    if isinstance(dep, list):
        return {d: "service_started" for d in dep}
    return {d: (c or {}).get("condition", "service_started")
            for d, c in dep.items()}


def test_compose_cli_validates_the_file():
    cli = _compose_cli()
    if not cli:
        pytest.skip("no docker-compose / docker compose CLI (dev/deps test "
                    "installs Debian's docker-compose)")
    r = subprocess.run(cli + ["-f", COMPOSE, "config", "-q"],
                       capture_output=True, text=True, env=_env(), cwd=SRC)
    assert r.returncode == 0, r.stderr
    assert "WARNING" not in r.stderr, r.stderr


def test_services(model):
    assert set(model["services"]) == {"kafka", "kafka-init", "kafka-ui",
                                      "httpd", "consumer", "postgres"}


def test_kafka_is_kraft_with_internal_and_external_listeners(model):
    kafka = model["services"]["kafka"]
    assert re.match(r"^apache/kafka:4\.\d+\.\d+$", kafka["image"])
    env = environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env

    def listeners(value):
        out = {}
        for item in value.split(","):
            name, _, hostport = item.partition("://")
            out[name] = hostport
        return out

    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(x.split(":") for x in
                     env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(bound) == set(protocols)
    assert bound["INTERNAL"] == ":19092"
    assert bound["EXTERNAL"] == ":9092"
    assert advertised == {"INTERNAL": "kafka:19092",
                          "EXTERNAL": "localhost:9092"}
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in bound
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in bound and controller not in advertised
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == \
        "%s@kafka%s" % (env["KAFKA_NODE_ID"], bound[controller])
    # The external listener is published to the host on the advertised port,
    # and only there.
    assert ports(kafka) == [("127.0.0.1", "9092", "9092")]
    assert kafka.get("hostname", "kafka") == "kafka"
    # Data survives `docker compose down` (not `down -v`).
    assert any(str(v).startswith("kafka-data:") or
               (isinstance(v, dict) and v.get("source") == "kafka-data")
               for v in kafka["volumes"])


def test_external_port_moves_published_and_advertised_together():
    kafka = resolved(KAFKA_EXTERNAL_PORT="29092")["services"]["kafka"]
    assert ports(kafka) == [("127.0.0.1", "29092", "9092")]
    assert "EXTERNAL://localhost:29092" in \
        environment(kafka)["KAFKA_ADVERTISED_LISTENERS"]


def test_one_variable_sets_the_brokers_everywhere(model):
    users = ("kafka-init", "kafka-ui", "httpd", "consumer")
    for name in users:
        assert "kafka:19092" in environment(model["services"][name]).values(), name

    moved = resolved(KAFKA_BROKERS="k1.example:9093,k2.example:9093")
    for name in users:
        env = environment(moved["services"][name])
        assert "k1.example:9093,k2.example:9093" in env.values(), name
        assert not any("kafka:19092" in v for v in env.values()), name
    assert environment(moved["services"]["httpd"])["KAFKA_BROKERS"] == \
        "k1.example:9093,k2.example:9093"
    assert environment(moved["services"]["consumer"])["KAFKA_BROKERS"] == \
        "k1.example:9093,k2.example:9093"


def test_healthchecks(model):
    s = model["services"]
    for name in ("kafka", "kafka-ui", "httpd", "postgres"):
        test = s[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "kafka-broker-api-versions.sh" in " ".join(s["kafka"]["healthcheck"]["test"])
    assert "localhost:19092" in " ".join(s["kafka"]["healthcheck"]["test"])
    assert "/ytkafka-status" in " ".join(s["httpd"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(s["postgres"]["healthcheck"]["test"])


def test_nothing_starts_before_kafka_answers(model):
    s = model["services"]
    for name in ("kafka-init", "kafka-ui", "httpd", "consumer"):
        assert depends(s[name]).get("kafka") == "service_healthy", name
    for name in ("httpd", "consumer"):
        assert depends(s[name]).get("kafka-init") == \
            "service_completed_successfully", name
    # Whatever is waited for as healthy has a healthcheck.
    for name, svc in s.items():
        for dep, cond in depends(svc).items():
            assert dep in s, (name, dep)
            if cond == "service_healthy":
                assert s[dep].get("healthcheck", {}).get("test"), (name, dep)
    init = " ".join(s["kafka-init"]["command"])
    for topic in ("youtube-links", "youtube-links.dlq"):
        assert "--topic" in init and topic in init
    assert s["kafka-init"].get("restart", "no") == "no"


def test_httpd_and_consumer_are_built_from_the_dockerfile(model):
    with open(DOCKERFILE) as f:
        stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", f.read(),
                            re.M | re.I)
    s = model["services"]
    for name in ("httpd", "consumer"):
        build = s[name]["build"]
        assert build["target"] == name and name in stages
        assert os.path.realpath(os.path.join(SRC, build["context"])) == \
            os.path.realpath(SRC)
    # Published on loopback only, like Kafka's and kafka-ui's.
    assert ports(s["httpd"]) == [("127.0.0.1", "8080", "8080")]
    assert ports(s["consumer"]) == []   # scalable: --scale consumer=N


def test_sqlite_volume_shared_by_consumer_and_httpd(model):
    assert "ytkafka-data" in model["volumes"]
    s = model["services"]

    def mount(svc):
        for v in svc.get("volumes") or []:
            if isinstance(v, dict):
                if v.get("source") == "ytkafka-data":
                    return v["target"]
            elif str(v).startswith("ytkafka-data:"):
                return str(v).split(":")[1]
        return None

    assert mount(s["consumer"]) == mount(s["httpd"]) == "/var/lib/ytkafka"
    db = environment(s["consumer"])["YTK_DB"]
    assert db.startswith("sqlite3:/var/lib/ytkafka/"), db


def test_postgres_profile(model):
    s = model["services"]
    assert s["postgres"]["profiles"] == ["postgres"]
    assert s["postgres"]["image"].startswith("postgres:")
    for name, svc in s.items():
        if name != "postgres":
            assert not svc.get("profiles"), name   # they run by default
    # No named volume for it: docker-compose 1.29 would create it at `up`
    # without the profile. Its data goes to a host directory instead.
    assert "postgres-data" not in (model.get("volumes") or {})
    mounts = [v for v in s["postgres"]["volumes"]
              if (v.get("target") if isinstance(v, dict)
                  else str(v).split(":")[1]) == "/var/lib/postgresql/data"]
    assert len(mounts) == 1
    m = mounts[0]
    if isinstance(m, dict):
        assert m["type"] == "bind", m
        assert os.path.realpath(m["source"]) == \
            os.path.realpath(os.path.join(SRC, "postgres-data")), m
    else:
        assert os.path.realpath(str(m).split(":")[0]) == \
            os.path.realpath(os.path.join(SRC, "postgres-data")), m
    dsn = "pgsql:host=postgres user=ytkafka password=ytkafka dbname=ytkafka"
    pg = resolved(YTK_DB=dsn)
    assert environment(pg["services"]["consumer"])["YTK_DB"] == dsn
    assert environment(pg["services"]["postgres"])["POSTGRES_DB"] == "ytkafka"
