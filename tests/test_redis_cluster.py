"""Publish and read back through a real 3-node Redis Cluster on loopback ports (started by this module)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from preference_cache import keys
from preference_cache.memory_store import InProcessPreferenceStore
from preference_cache.publish import publish
from preference_cache.redis_store import RedisPreferenceStore
from preference_cache.settings import PrefReaderSettings
from preference_cache.synthetic import two_versions

pytestmark = pytest.mark.redis
OLD, NEW = two_versions(30, 90, seed=11)  # same keys, every record different


@dataclass
class ClusterNodes:
    ports: list[int]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(n: int) -> list[int]:
    """Ports p with p + 10000 (the cluster bus) free as well."""
    ports: list[int] = []
    while len(ports) < n:
        p = random.randint(20_000, 29_999)
        if p not in ports and _port_free(p) and _port_free(p + 10_000):
            ports.append(p)
    return ports


def _wait(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=1) as c:
            return bool(c.ping())
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=1) as c:
            info = c.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
            return isinstance(info, dict) and info.get("cluster_state") == "ok"
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterNodes]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip(
            "redis-server / redis-cli binaries are not installed (make test installs them with apt-get)"
        )
    root: Path = tmp_path_factory.mktemp("redis-cluster")
    nodes, procs = ClusterNodes(_cluster_ports(3)), []
    try:
        for port in nodes.ports:
            workdir = root / str(port)
            workdir.mkdir()
            procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(workdir / "nodes.conf"),
                        "--cluster-node-timeout",
                        "5000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(workdir),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in nodes.ports:
            _wait(lambda p=port: _answers(p), f"redis-server on port {port}")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in nodes.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in nodes.ports:
            _wait(lambda p=port: _cluster_ok(p), f"cluster state ok on port {port}")
        yield nodes
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.fixture
def cluster_client(redis_cluster: ClusterNodes) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url)
    yield client
    client.close()


def cluster_reader(nodes: ClusterNodes, prefix: str) -> RedisPreferenceStore:
    settings = PrefReaderSettings(url=nodes.url, cluster=True, key_prefix=prefix, deadline_ms=2000)
    return RedisPreferenceStore(settings)


async def test_cluster_publish_reads_back_every_record_across_slots(
    redis_cluster: ClusterNodes, cluster_client: RedisCluster
) -> None:
    prefix = f"prectr-cl-{uuid.uuid4().hex[:8]}"
    report = publish(OLD, cluster_client, prefix=prefix, chunk_size=16)
    assert (report.records_written, report.flipped) == (120, True)
    per_node = [redis.Redis(port=p).dbsize() for p in redis_cluster.ports]
    assert all(n > 10 for n in per_node), f"records should spread over every node: {per_node}"
    store, local = cluster_reader(redis_cluster, prefix), InProcessPreferenceStore(OLD)
    try:
        assert await store.ping()
        for i in range(90):
            remote, expected = (
                await store.lookup(f"Query {i % 30}", str(i)),
                await local.lookup(f"query {i % 30}", str(i)),
            )
            assert (remote.qpref, remote.upref, remote.outcome) == (expected.qpref, expected.upref, "hit")
    finally:
        await store.close()


async def test_cluster_flip_moves_readers_and_expires_the_old_namespace_on_every_node(
    redis_cluster: ClusterNodes, cluster_client: RedisCluster
) -> None:
    prefix = f"prectr-cl-{uuid.uuid4().hex[:8]}"
    publish(OLD, cluster_client, prefix=prefix)
    report = publish(NEW, cluster_client, prefix=prefix, grace_seconds=90)
    assert (report.previous, report.keys_expiring) == (OLD.namespace, 120)
    for i in range(90):
        assert 0 < cluster_client.ttl(keys.user_record_key(prefix, OLD.namespace, str(i))) <= 90
        assert cluster_client.ttl(keys.user_record_key(prefix, NEW.namespace, str(i))) == -1
    store = cluster_reader(redis_cluster, prefix)
    try:
        found = await store.lookup("query 4", "4")
        assert (found.qpref, found.upref, found.namespace) == (
            NEW.query_record(4),
            NEW.user_record(4),
            NEW.namespace,
        )
        again = publish(NEW, cluster_client, prefix=prefix)
        assert (again.records_written, again.flipped) == (0, False)
    finally:
        await store.close()
