"""``manifest.json``: the schema export writes and the service reads. Frozen; a mismatch stops start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1
DType = Literal["int64", "int32", "float32", "float16"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(_Frozen):
    name: str
    dtype: DType
    shape: tuple[int | str, ...] = Field(description="static sizes as ints, dynamic axes as names")


class GraphSpec(_Frozen):
    file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)


class TextSpec(_Frozen):
    tokenizer_file: str = "tokenizer.json"
    max_len: int = Field(64, ge=8, le=512)
    max_query_len: int = Field(16, ge=1)
    length_buckets: tuple[int, ...] = (16, 24, 32, 48, 64)
    vocab_size: int = Field(..., ge=16)

    @model_validator(mode="after")
    def _buckets_end_at_max_len(self) -> TextSpec:
        if (
            list(self.length_buckets) != sorted(self.length_buckets)
            or self.length_buckets[-1] != self.max_len
        ):
            raise ValueError(f"length_buckets {self.length_buckets} must be ascending and end at max_len")
        return self


class IdFeatureSpec(_Frozen):
    name: str
    buckets: int = Field(..., ge=2, description="hash buckets; 0 is padding/unknown")


class PrefSpec(_Frozen):
    dense_columns: tuple[str, ...]
    prior_rate: float = Field(0.05, gt=0, lt=1)
    strength: float = Field(20.0, gt=0)
    history_len: int = Field(10, ge=0)


class BundleManifest(_Frozen):
    schema_version: int = SCHEMA_VERSION
    model_version: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9._\-]+$")
    created_at: str
    variant: Literal["fp32", "int8", "fp16"] = "fp32"
    num_levels: int = Field(4, ge=2)
    level_names: tuple[str, ...] = ("irrelevant", "weak", "relevant", "strong")
    rel_dim: int = Field(..., ge=1)
    text: TextSpec
    encoder: GraphSpec
    head: GraphSpec
    prefs: PrefSpec
    id_features: tuple[IdFeatureSpec, ...]
    item_dense_columns: tuple[str, ...] = ()
    files: dict[str, str] = Field(default_factory=dict, description="file name -> sha256 hex")
    data_fingerprint: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(
                f"manifest schema_version {v} is not supported (this code reads {SCHEMA_VERSION})"
            )
        return v

    @model_validator(mode="after")
    def _levels_consistent(self) -> BundleManifest:
        if len(self.level_names) != self.num_levels:
            raise ValueError(f"{len(self.level_names)} level_names for num_levels={self.num_levels}")
        return self

    def id_buckets(self, name: str) -> int:
        for spec in self.id_features:
            if spec.name == name:
                return spec.buckets
        raise KeyError(f"manifest has no id feature {name!r}")

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> BundleManifest:
        return cls.model_validate_json(Path(path).read_text())
