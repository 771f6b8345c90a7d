"""Export benchmark -> JSON: time per request of 200 candidates, medians over repeated runs (2 threads).

    python bench/export_bench.py --checkpoint CKPT --data DIR [--out reports/export_bench.json]
    python bench/export_bench.py --data DIR            # quick-fits the tiny model first
    python bench/export_bench.py --data DIR --untrained-default-arch   # shipped shapes, timing only

Measures, on real (query, titles) requests from the data's test day: torch eager vs ORT fp32 vs ORT int8
(encoder + head), padding to the request's length bucket vs per-row buckets vs fixed max_len, the
encoder's and the head's share, ORT graph optimisation levels (incl. an offline-optimised file loaded
with optimisation disabled), thread spinning off, and 1 thread. Cases are interleaved (see
:func:`export.timing.interleaved_medians`), so ratios hold on a busy machine even when absolutes drift.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REQUESTS = 5  # distinct real requests; every timing is the median over repeats x REQUESTS runs


def run(model, data_dir: Path, repeats: int, threads: int) -> dict:
    import torch

    from export.bundle_writer import export_fp32
    from export.timing import CANDIDATES, interleaved_medians, real_requests, row_buckets
    from export.variants import cpu_session, optimize_offline, quantize_int8
    from features.head_inputs import build_head_feeds
    from features.normalize import normalize_query
    from features.text import TextEncoder

    torch.set_num_threads(threads)
    t = model.text
    text = TextEncoder(model.tokenizer_path, t.max_len, t.max_query_len, t.length_buckets)
    requests = [text.encode(normalize_query(q), titles) for q, titles in real_requests(data_dir, REQUESTS)]
    bucketed = [_feeds(e) for e in requests]
    fixed = [{k: np.pad(v, ((0, 0), (0, t.max_len - v.shape[1]))) for k, v in f.items()} for f in bucketed]
    split = [row_buckets(e, t.length_buckets) for e in requests]
    with tempfile.TemporaryDirectory() as tmp:
        enc32, head32 = export_fp32(model, Path(tmp), "legacy")
        enc8, head8 = (
            quantize_int8(enc32, Path(tmp) / "e8.onnx"),
            quantize_int8(head32, Path(tmp) / "h8.onnx"),
        )
        offline = optimize_offline(enc32, Path(tmp) / "e_opt.onnx", "extended")
        e32, e8, h32, h8 = (cpu_session(p, threads=threads) for p in (enc32, enc8, head32, head8))
        levels = {lv: cpu_session(enc32, lv, threads) for lv in ("disable", "basic", "extended")}
        e_off = cpu_session(offline, "disable", threads)
        e_nospin = cpu_session(enc32, "all", threads, spin=False)
        e_one, h_one = cpu_session(enc32, "all", 1), cpu_session(head32, "all", 1)
        rel_vec, rel_logits = e32.run(None, bucketed[0])
        ids = [str(i) for i in range(CANDIDATES)]
        ones = np.ones(CANDIDATES, np.int64)
        head_feeds = build_head_feeds(
            rel_vec=rel_vec,
            rel_logits=rel_logits,
            query="q",
            user_id="u",
            item_ids=ids,
            price_bucket=ones,
            pop_bucket=ones,
            qpref=None,
            upref=None,
            buckets=model.buckets,
            history_len=model.history_len,
        )
        encoder = interleaved_medians(
            {
                "ort_fp32_request_bucket": lambda i: e32.run(None, bucketed[i]),
                "ort_fp32_row_buckets": lambda i: [e32.run(None, f) for f in split[i]],
                "ort_fp32_fixed_max_len": lambda i: e32.run(None, fixed[i]),
                "ort_int8_request_bucket": lambda i: e8.run(None, bucketed[i]),
                "torch_eager_request_bucket": lambda i: _torch(model.encoder, bucketed[i], threads),
                "torch_eager_1_thread": lambda i: _torch(model.encoder, bucketed[i], 1),
                **{
                    f"ort_fp32_opt_{lv}": (lambda i, s=s: s.run(None, bucketed[i]))
                    for lv, s in levels.items()
                },
                "ort_fp32_offline_extended_loaded_disabled": lambda i: e_off.run(None, bucketed[i]),
                "ort_fp32_no_spinning": lambda i: e_nospin.run(None, bucketed[i]),
                "ort_fp32_1_thread": lambda i: e_one.run(None, bucketed[i]),
            },
            len(requests),
            repeats,
        )
        head = interleaved_medians(
            {
                "ort_fp32": lambda i: h32.run(None, head_feeds),
                "ort_int8": lambda i: h8.run(None, head_feeds),
                "torch_eager": lambda i: _torch(model.head, head_feeds, threads),
                "torch_eager_1_thread": lambda i: _torch(model.head, head_feeds, 1),
                "ort_fp32_1_thread": lambda i: h_one.run(None, head_feeds),
            },
            1,
            repeats * len(requests),
        )
        created = interleaved_medians(
            {
                "fp32_opt_all": lambda i: cpu_session(enc32, "all", threads),
                "offline_extended_loaded_disabled": lambda i: cpu_session(offline, "disable", threads),
            },
            1,
            5,
        )
    return _summarise(encoder, head, created, requests, model)


def _feeds(enc) -> dict[str, np.ndarray]:
    return enc.as_feeds(("input_ids", "attention_mask", "token_type_ids"))


def _torch(module, feeds: dict[str, np.ndarray], threads: int):
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    with torch.inference_mode():
        return module(*(torch.from_numpy(v) for v in feeds.values()))


def _summarise(e: dict, h: dict, created: dict, requests, model) -> dict:
    total = {
        "torch_eager": e["torch_eager_request_bucket"] + h["torch_eager"],
        "ort_fp32": e["ort_fp32_request_bucket"] + h["ort_fp32"],
        "ort_int8": e["ort_int8_request_bucket"] + h["ort_int8"],
    }
    lengths = np.concatenate([r.attention_mask.sum(axis=1) for r in requests])
    return {
        "total_ms_per_200": total,
        "encoder_ms": e,
        "head_ms": h,
        "session_create_ms": created,
        "speedup": {
            "ort_fp32_vs_torch_eager": total["torch_eager"] / total["ort_fp32"],
            "ort_fp32_vs_torch_eager_1_thread": (e["torch_eager_1_thread"] + h["torch_eager_1_thread"])
            / (e["ort_fp32_1_thread"] + h["ort_fp32_1_thread"]),
            "no_spinning_vs_spinning": e["ort_fp32_request_bucket"] / e["ort_fp32_no_spinning"],
            "ort_int8_vs_ort_fp32": total["ort_fp32"] / total["ort_int8"],
            "request_bucket_vs_fixed_max_len": e["ort_fp32_fixed_max_len"] / e["ort_fp32_request_bucket"],
            "row_buckets_vs_fixed_max_len": e["ort_fp32_fixed_max_len"] / e["ort_fp32_row_buckets"],
            "opt_all_vs_disable": e["ort_fp32_opt_disable"] / e["ort_fp32_request_bucket"],
        },
        "share_of_ort_fp32": {
            "encoder": e["ort_fp32_request_bucket"] / total["ort_fp32"],
            "head": h["ort_fp32"] / total["ort_fp32"],
        },
        "inputs": {
            "requests": len(requests),
            "candidates": len(requests[0].input_ids),
            "request_bucket_widths": [r.input_ids.shape[1] for r in requests],
            "mean_tokens": float(lengths.mean()),
            "max_len": model.text.max_len,
            "length_buckets": list(model.text.length_buckets),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="model.checkpoint directory (default: quick-fit tiny)"
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="data directory (requests come from its test day)"
    )
    parser.add_argument("--out", type=Path, default=Path("reports/export_bench.json"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--untrained-default-arch",
        action="store_true",
        help="timing only: the default student (EncoderConfig/HeadConfig defaults) with random weights",
    )
    args = parser.parse_args()
    from export.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as work:
        if args.untrained_default_arch:
            from export.timing import default_arch

            model = default_arch(args.data, Path(work))
        elif args.checkpoint is None:
            from export.tiny import train_tiny

            model = load_checkpoint(train_tiny(args.data, work))
        else:
            model = load_checkpoint(args.checkpoint)
        started = time.perf_counter()
        result = run(model, args.data, args.repeats, args.threads)
    result["meta"] = {
        "checkpoint": model.source,
        "threads": args.threads,
        "repeats": args.repeats,
        "machine": platform.platform(),
        "processor": platform.processor(),
        "seconds": time.perf_counter() - started,
        "statistic": "median ms",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({"total_ms_per_200": result["total_ms_per_200"], "speedup": result["speedup"]}, indent=2)
    )


if __name__ == "__main__":
    main()
