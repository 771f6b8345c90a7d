"""The ``prectr`` console script."""
