"""The online scoring service (FastAPI + ONNX Runtime). Never imports torch, model/, export/ or data/."""
