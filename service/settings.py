"""The service's one settings root: ``PRECTR_`` environment variables, ``__`` between section and field.

Example: ``PRECTR_BATCHING__ENCODER__MAX_ROWS=32``, ``PRECTR_REDIS__URL=redis://127.0.0.1:6379/0``.
The app factory receives a :class:`Settings`; each component gets only its section. Nothing else in the
service reads the environment. Validators refuse impossible combinations at start-up, not mid-request.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from preference_cache.settings import PrefReaderSettings

# Hard caps of the request schema (service/schemas.py); configured limits may be tighter, never looser.
HARD_MAX_CANDIDATES = 2000
HARD_MAX_TEXT_CHARS = 2048


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BundleSettings(_Section):
    path: Path | None = Field(
        default=None, description="bundle directory (manifest.json, encoder/head .onnx, tokenizer)"
    )


class OnnxSettings(_Section):
    providers: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="auto: CUDA when onnxruntime offers it, else CPU; cuda: refuse to start without it",
    )
    # One thread per run: the encoder batcher runs one batch per core side by side instead, which gave
    # 1.35x the throughput of one run on every core (2 cores, V2 int8, real 200-title requests: 12.8 vs
    # 17.3 ms per request; small bucket batches and per-op thread synchronisation scale poorly).
    intra_op_threads: int = Field(
        default=1, ge=0, le=256, description="CPU provider threads per run; 0 = ORT default (all cores)"
    )
    inter_op_threads: int = Field(default=1, ge=0, le=256)
    cuda_intra_op_threads: int = Field(
        default=1, ge=0, le=256, description="CPU threads beside the CUDA provider"
    )
    cuda_device_id: int = Field(default=0, ge=0)
    head_on_cpu: bool = Field(
        default=False,
        description="with CUDA, run the small head graph on the CPU provider (its kernel launches can "
        "cost more than its arithmetic); the encoder stays on the GPU",
    )
    # Off by default: TF32 matrix units moved rel_vec by up to 4e-4 and the fused score by 1.5e-4 against
    # the CPU (H100, tiny test bundle), outside the 1e-4 parity the service promises for the same inputs.
    cuda_tf32: bool = Field(
        default=False, description="CUDA matmuls in TF32: faster on big encoders, ~1e-3 relative error"
    )
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    # Off by default: on a small CPU box spinning intra-op threads starve the event loop and the tokenizer
    # (serve_bench, 2 cores, V2 int8 bundle: off gave 22 vs 12 req/s at concurrency 8).
    allow_spinning: bool = Field(
        default=False, description="idle ORT threads spin: lower per-op latency, busier cores"
    )


class GraphBatching(_Section):
    """Defaults suit CPU: no waiting (rows pile up while the previous batch runs, which is all the batching
    a compute-bound CPU can use); on a GPU a few ms of ``max_wait_ms`` buys larger batches."""

    max_rows: int = Field(default=64, ge=1, le=8192, description="rows per inference batch")
    max_wait_ms: float = Field(
        default=0.0, ge=0, le=100, description="how long a non-full batch waits for more rows"
    )
    max_queue_rows: int = Field(
        default=8192, ge=1, description="rows waiting before new work is refused (429)"
    )
    workers: int = Field(
        default=1,
        ge=0,
        le=64,
        description="batches run side by side (worker threads); 0 = one per CPU core, at most 8",
    )

    max_tokens: int | None = Field(
        default=0,
        ge=0,
        description=(
            "token budget of a length-bucketed batch (rows x bucket width); 0 = rows only, "
            "None = the provider's default (1024 on CPU, none on CUDA)"
        ),
    )

    pin_cores: bool | None = Field(
        default=False,
        description="pin worker i to the i-th core this process may use (no more workers than cores); "
        "None: on the CPU provider only",
    )

    @model_validator(mode="after")
    def _queue_holds_a_batch(self) -> GraphBatching:
        if self.max_queue_rows < self.max_rows:
            raise ValueError(f"max_queue_rows={self.max_queue_rows} is smaller than max_rows={self.max_rows}")
        return self

    def for_provider(self, provider: str) -> GraphBatching:
        """These settings with ``max_tokens`` and ``pin_cores`` resolved for ``provider`` (None: the
        provider's default)."""
        update: dict[str, object] = {}
        if self.max_tokens is None:
            update["max_tokens"] = 0 if provider == "cuda" else CPU_BATCH_TOKENS
        if self.pin_cores is None:
            update["pin_cores"] = provider == "cpu"
        return self.model_copy(update=update) if update else self

    def rows_per_batch(self, width: int | None) -> int:
        """Most rows of one batch of ``width``-token rows (None: rows without a length bucket)."""
        if width is None or not self.max_tokens:
            return self.max_rows
        return max(1, min(self.max_rows, self.max_tokens // width))


# On a CPU an encoder row costs about the same up to ~1024 tokens per batch, then more as the activations
# outgrow the cache, while every run has a fixed cost (Python binding, one kernel call per graph node) and
# hands the GIL back once. Two single-threaded runs side by side on 2 cores, V2 int8, CPU us per row at
# 256/512/1024/2048/4096 tokens per batch:
# - first box: 32-token rows 236/231/236/256/281, 64-token rows 511/507/536/561/615 (512 was the default);
# - 2-core AMD EPYC (2 MiB L2 per core), 2026-11-24: 32-token rows 127/123/146/132/144, 64-token rows
#   277/274/297/312/398, but whole real 200-candidate requests (tails included) pipelined on both cores:
#   24.9 / 22.0 / 24.4 / 24.7 ms of CPU per request at 512 / 1024 / 2048 / 4096 (13.5 / 8.1 / 5.6 / 4.5
#   runs each), and the service kept the cores busier with fewer runs (91 % -> 93 % at 512 -> 1024).
# The best budget depends on the CPU's caches: measure with serve_bench and
# PRECTR_BATCHING__ENCODER__MAX_TOKENS (its raw baseline follows the same setting).
CPU_BATCH_TOKENS = 1024


class EncoderBatching(GraphBatching):
    """Encoder batches hold one length bucket, at most ``max_rows`` rows and ``max_tokens`` tokens. On a CPU
    the token budget binds (1024: 64 rows of 16 tokens, 16 of 64), so a 200-candidate request splits into
    several batches that the workers run side by side; on a GPU (no token budget by default) one
    request's bucket is one batch and concurrent requests merge into bigger ones."""

    max_rows: int = Field(default=256, ge=1, le=8192, description="rows per inference batch")
    max_tokens: int | None = Field(
        default=None,
        ge=0,
        description=(
            "tokens per batch (rows x bucket width); None: 1024 on CPU (per-row cost rises beyond it), "
            "no limit on CUDA; 0 = no limit"
        ),
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="encoder batches run side by side; 0 = one per CPU core, at most 8 (also on a GPU)",
    )
    # Measured (2 cores, V2 int8, in-process service at concurrency 16, three alternating pairs of 3 x 200
    # requests): pinned 15.1k / 14.8k / 14.5k cand/s against 13.9k / 14.2k / 14.1k floating, the cores busy
    # 98 % of the time instead of 95-96 %; two alternating serve_bench pairs (raw ORT pinned alike): ratio
    # 0.899 -> 0.903 and 0.931 -> 0.950.
    pin_cores: bool | None = Field(
        default=None,
        description="pin encoder worker i to the i-th core this process may use (no more workers than "
        "cores); None: on the CPU provider only. Off with several server processes (they would share cores)",
    )


class HeadBatching(GraphBatching):
    """The head is cheap per row: big batches amortise the per-call overhead."""

    max_rows: int = Field(default=1024, ge=1, le=8192, description="rows per inference batch")
    max_queue_rows: int = Field(
        default=16384, ge=1, description="rows waiting before new work is refused (429)"
    )


class BatchingSettings(_Section):
    # Separate classes, not GraphBatching(max_rows=...) defaults: an env var for one field of a section
    # replaces the section's default instance, and the per-graph defaults must survive that.
    encoder: EncoderBatching = EncoderBatching()
    head: HeadBatching = HeadBatching()
    cost_ewma_alpha: float = Field(
        default=0.2, gt=0, le=1, description="weight of the newest batch in per-row cost"
    )


class RedisSettings(_Section):
    """Where preferences come from: Redis (``url``), else the embedded store over a mined directory."""

    url: str | None = Field(
        default=None, description="redis://, rediss:// or unix:// URL; None: embedded store"
    )
    prefs_path: Path | None = Field(
        default=None,
        description="mined preferences directory for the embedded store; None: every lookup misses",
    )
    cluster: bool = Field(default=False, description="use the Redis Cluster client")
    key_prefix: str = Field(default="prectr", description="first key segment of the published records")
    deadline_ms: float = Field(
        default=5.0, gt=0, le=1000, description="preference lookup deadline; defaults after it"
    )
    pointer_refresh_s: float = Field(
        default=1.0, ge=0, le=3600, description="cache of the current-namespace pointer"
    )
    max_connections: int = Field(default=64, ge=1, le=10_000)

    @model_validator(mode="after")
    def _reader_settings_valid(self) -> RedisSettings:
        if self.url is not None:
            self.reader_settings()  # the store's own validators: bad scheme, cluster over unix, prefix
        return self

    def reader_settings(self) -> PrefReaderSettings:
        from preference_cache.settings import PrefReaderSettings

        if self.url is None:
            raise ValueError("redis.url is not set")
        return PrefReaderSettings(
            url=self.url,
            cluster=self.cluster,
            key_prefix=self.key_prefix,
            deadline_ms=self.deadline_ms,
            pointer_refresh_s=self.pointer_refresh_s,
            max_connections=self.max_connections,
        )


class CacheSettings(_Section):
    capacity: int = Field(default=200_000, ge=0, description="relevance cache entries; 0 disables the cache")
    admit_after: int = Field(
        default=2,
        ge=1,
        description="cache-miss requests of a query before its pairs are stored (1: the first); one-off "
        "queries then cost no puts and evict nothing",
    )
    title_tokens: int = Field(
        default=100_000, ge=0, description="titles whose token ids are kept; 0 disables"
    )


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    default_budget_ms: float = Field(
        default=200.0, gt=0, le=60_000, description="deadline when the body has none"
    )
    max_budget_ms: float = Field(default=5_000.0, gt=0, le=60_000)
    max_candidates: int = Field(default=HARD_MAX_CANDIDATES, ge=1, le=HARD_MAX_CANDIDATES)
    max_title_chars: int = Field(default=512, ge=1, le=HARD_MAX_TEXT_CHARS)
    max_query_chars: int = Field(default=256, ge=1, le=HARD_MAX_TEXT_CHARS)
    slo_seconds: float = Field(
        default=0.25, gt=0, le=60, description="latency SLO; a histogram bucket sits on it"
    )
    drain_grace_s: float = Field(
        default=0.0, ge=0, le=300, description="answer 503 on /readyz this long before closing"
    )
    drain_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="longest wait for in-flight work at shutdown"
    )
    cpu_threads: int = Field(
        default=2, ge=1, le=64, description="threads for tokenisation off the event loop"
    )
    # Python collects its youngest generation every 700 net allocations of container objects, several
    # times per 200-candidate request. Raising it saves collector time, but measured (serve_bench bundle,
    # 15 s phases, two alternating rounds): GC per request 0.15 / 0.38 ms at concurrency 1 / 8 with 700 vs
    # 0.05 / 0.12 ms with 20,000, while encoder CPU per request went 44-45 -> 48-54 ms and c=1 34 -> 28-31
    # req/s (cause not established: the request path leaves no cyclic garbage holding arrays). So the
    # default keeps Python's; prectr_gc_pause_seconds_total shows what GC costs.
    gc_gen0_threshold: int = Field(
        default=0,
        ge=0,
        description="allocations between young-generation collections while serving; 0 = Python's (700)",
    )
    # Alternating A/B runs (V2 int8, 2 cores, c=8), 0.5 ms vs Python's 5 ms: +5.0 / +4.0 / +1.8 % req/s in
    # three 10 s rounds, best service cand/s +0.4 / +8.5 % in two full serve_bench pairs; 0.1 ms was worse.
    switch_interval_ms: float = Field(
        default=0.5,
        ge=0,
        le=100,
        description=(
            "how long a thread waits for the GIL before asking its holder to let go, while serving "
            "(sys.setswitchinterval); 0 = Python's (5 ms). Shorter: inference threads returning from "
            "ONNX Runtime wait less behind the request path"
        ),
    )

    @model_validator(mode="after")
    def _default_budget_within_max(self) -> ServerSettings:
        if self.default_budget_ms > self.max_budget_ms:
            raise ValueError(
                f"default_budget_ms={self.default_budget_ms} exceeds max_budget_ms={self.max_budget_ms}"
            )
        return self


class AdminSettings(_Section):
    token: SecretStr | None = Field(
        default=None, description="bearer token for /admin/*; None disables those routes"
    )


class Settings(BaseSettings):
    """Root of every service setting (``PRECTR_<SECTION>__<FIELD>``)."""

    model_config = SettingsConfigDict(
        env_prefix="PRECTR_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    bundle: BundleSettings = BundleSettings()
    onnx: OnnxSettings = OnnxSettings()
    batching: BatchingSettings = BatchingSettings()
    redis: RedisSettings = RedisSettings()
    cache: CacheSettings = CacheSettings()
    server: ServerSettings = ServerSettings()
    admin: AdminSettings = AdminSettings()

    @model_validator(mode="after")
    def _largest_request_fits_the_queues(self) -> Settings:
        """A request of ``max_candidates`` rows must fit each queue, or it could never be admitted."""
        for name in ("encoder", "head"):
            graph: GraphBatching = getattr(self.batching, name)
            if graph.max_queue_rows < self.server.max_candidates:
                raise ValueError(
                    f"batching.{name}.max_queue_rows={graph.max_queue_rows} is smaller than "
                    f"server.max_candidates={self.server.max_candidates}"
                )
        if self.admin.token is not None and len(self.admin.token.get_secret_value()) < 16:
            raise ValueError("admin.token must be at least 16 characters (or unset to disable /admin)")
        return self
