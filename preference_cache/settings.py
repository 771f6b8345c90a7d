"""Settings of the online preference reader (the service nests this model in its settings root)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from preference_cache.keys import DEFAULT_PREFIX, check_prefix


class PrefReaderSettings(BaseModel):
    """How the service reads preferences from Redis. Refuses impossible values at start-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(
        default="redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL (any node for a cluster)"
    )
    cluster: bool = Field(
        default=False, description="use the Redis Cluster client (redis.asyncio.cluster.RedisCluster)"
    )
    key_prefix: str = Field(default=DEFAULT_PREFIX, description="first key segment; tests use a random one")
    deadline_ms: float = Field(
        default=5.0, gt=0, le=10_000, description="hard limit for one request's lookups"
    )
    pointer_refresh_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="how long the namespace pointer is cached; publish --grace-seconds must exceed it",
    )
    socket_timeout_s: float = Field(
        default=0.25, gt=0, description="per socket read/write; the deadline is stricter"
    )
    socket_connect_timeout_s: float = Field(default=0.25, gt=0)
    max_connections: int = Field(default=64, ge=1, le=10_000)
    ping_timeout_s: float = Field(default=1.0, gt=0, description="deadline of ping() (readiness probe)")

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"preference store url {v!r} must start with redis://, rediss:// or unix://")
        return v

    @field_validator("key_prefix")
    @classmethod
    def _valid_prefix(cls, v: str) -> str:
        return check_prefix(v)

    @model_validator(mode="after")
    def _cluster_over_tcp(self) -> PrefReaderSettings:
        if self.cluster and self.url.startswith("unix://"):
            raise ValueError("a Redis Cluster cannot be reached over a unix socket")
        return self

    @property
    def deadline_s(self) -> float:
        return self.deadline_ms / 1000.0
