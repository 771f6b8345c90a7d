"""Checkpoint -> bundle: two ONNX graphs (encoder, fusion head), tokenizer and manifest, parity-validated."""
