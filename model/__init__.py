"""PRECTR / PRECTR-V2 models, training, evaluation metrics and reports (PyTorch lives here, nowhere online)."""
