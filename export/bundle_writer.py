"""Write a bundle: export fp32, validate, derive the variant, validate it, record metrics, publish atomically.

Nothing lands under ``out`` unless every check passed: the bundle is assembled in a sibling temporary
directory, re-opened with :func:`features.bundle.open_bundle` and :func:`features.graph_check.check_bundle_graphs`
exactly as the service will, and only then renamed into place.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from export.checkpoint import ExportableModel
from export.graph_specs import ENCODER_FILE, HEAD_FILE, encoder_spec, head_spec
from export.onnx_export import Exporter, ExportError, export_module
from export.timing import encoder_ms_per_request
from export.validate import GraphValidation, example_inputs, validate_graphs
from export.variants import CONVERTED_GRAPHS, VARIANTS, Variant, make_variant
from features.bundle import BundleFiles, open_bundle, sha256_file
from features.graph_check import check_bundle_graphs
from features.manifest import BundleManifest
from features.tokenizer import load_tokenizer

VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._\-]+$")
TOKENIZER_FILE = "tokenizer.json"
# Called with (model, fp32 dir, variant dir, variant) when --data is given; returns metrics to record.
DataChecks = Callable[[ExportableModel, Path, Path, Variant], dict[str, float]]


@dataclass(frozen=True)
class ExportResult:
    bundle: BundleFiles
    validations: tuple[GraphValidation, ...]

    @property
    def manifest(self) -> BundleManifest:
        return self.bundle.manifest


def _check_inputs(model: ExportableModel, out: Path, variant: str, force: bool) -> None:
    if variant not in VARIANTS:
        raise ExportError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if not VERSION_PATTERN.match(out.name):
        raise ExportError(f"bundle directory name {out.name!r} is the model version: use only [A-Za-z0-9._-]")
    if out.exists() and not force:
        raise ExportError(f"{out} already exists; pass --force to replace it")
    vocab = load_tokenizer(model.tokenizer_path).get_vocab_size()
    if vocab > model.vocab_size:
        raise ExportError(
            f"tokenizer {model.tokenizer_path} has {vocab} tokens but the encoder embeds only {model.vocab_size}"
        )


def export_fp32(model: ExportableModel, work: Path, exporter: Exporter) -> tuple[Path, Path]:
    enc_args, head_args = example_inputs(model)
    fp32 = work / "fp32"
    enc = export_module(
        model.encoder,
        enc_args,
        encoder_spec(model.rel_dim, model.num_levels),
        fp32 / ENCODER_FILE,
        exporter=exporter,
    )
    head = export_module(
        model.head,
        head_args,
        head_spec(model.rel_dim, model.num_levels, model.history_len),
        fp32 / HEAD_FILE,
        exporter=exporter,
    )
    return enc, head


def _manifest(model: ExportableModel, stage: Path, version: str, variant: Variant, metrics: dict[str, float]):
    text = model.text.model_copy(update={"tokenizer_file": TOKENIZER_FILE})
    return BundleManifest(
        model_version=version,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        variant=variant,
        num_levels=model.num_levels,
        level_names=model.level_names,
        rel_dim=model.rel_dim,
        text=text,
        encoder=encoder_spec(model.rel_dim, model.num_levels),
        head=head_spec(model.rel_dim, model.num_levels, model.history_len),
        prefs=model.pref_spec(),
        id_features=model.id_features(),
        files={name: sha256_file(stage / name) for name in (ENCODER_FILE, HEAD_FILE, TOKENIZER_FILE)},
        data_fingerprint=model.data_fingerprint,
        metrics=metrics,
    )


def export_bundle(
    model: ExportableModel,
    out: str | Path,
    *,
    variant: Variant = "fp32",
    exporter: Exporter = "legacy",
    data_checks: DataChecks | None = None,
    measure_speed: bool = True,
    force: bool = False,
) -> ExportResult:
    """Export, validate and publish ``model`` as bundle ``out`` (its directory name is the model version)."""
    out = Path(out)
    _check_inputs(model, out, variant, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        work = Path(tmp)
        enc32, head32 = export_fp32(model, work, exporter)
        validations = [validate_graphs(model, enc32, head32, "fp32")]
        final = work / variant
        final.mkdir(exist_ok=True)
        enc = make_variant("encoder", enc32, final / ENCODER_FILE, variant)
        head = make_variant("head", head32, final / HEAD_FILE, variant)
        if variant != "fp32":
            validations.append(validate_graphs(model, enc, head, variant))
        metrics = dict(model.metrics)
        for v in validations:
            metrics.update(v.summary())
        if measure_speed and CONVERTED_GRAPHS[variant]:
            seq = min(32, model.text.max_len)
            base = encoder_ms_per_request(enc32, model.vocab_size, seq)
            mine = encoder_ms_per_request(enc, model.vocab_size, seq)
            metrics.update(
                {
                    "encoder_ms_200_fp32": base,
                    f"encoder_ms_200_{variant}": mine,
                    f"speedup_{variant}_vs_fp32": base / mine,
                }
            )
        if data_checks is not None:
            metrics.update(data_checks(model, work / "fp32", final, variant))
        stage = work / "bundle"
        stage.mkdir()
        shutil.copyfile(enc, stage / ENCODER_FILE)
        shutil.copyfile(head, stage / HEAD_FILE)
        shutil.copyfile(model.tokenizer_path, stage / TOKENIZER_FILE)
        _manifest(model, stage, out.name, variant, metrics).write(stage / "manifest.json")
        check_bundle_graphs(open_bundle(stage))
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    bundle = open_bundle(out)
    return ExportResult(bundle, tuple(validations))
