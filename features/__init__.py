"""The train/serve contract: torch-free, imported by both the offline and the online side."""
