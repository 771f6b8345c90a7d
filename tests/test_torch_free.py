"""Serving never imports torch: every module of the serving packages imports cleanly without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVING_PACKAGES = ("features", "preference_cache", "service")
FORBIDDEN = ("torch", "transformers", "model", "export")

PROBE = """
import importlib, pkgutil, sys
mods = []
for pkg_name in {packages!r}:
    pkg = importlib.import_module(pkg_name)
    mods.append(pkg_name)
    for info in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
        importlib.import_module(info.name)
        mods.append(info.name)
leaked = sorted(m for m in {forbidden!r} if m in sys.modules)
print(len(mods), ",".join(leaked))
"""


def test_serving_packages_never_import_torch_or_training_code() -> None:
    present = tuple(p for p in SERVING_PACKAGES if (REPO / p / "__init__.py").exists())
    count, leaked = run_probe(present)
    assert count >= len(present)
    assert leaked == "", f"serving packages imported {leaked}"


def run_probe(packages: tuple[str, ...], extra_path: Path | None = None) -> tuple[int, str]:
    env_path = [str(extra_path)] if extra_path else []
    code = f"import sys; sys.path[:0] = {env_path!r}\n" + PROBE.format(packages=packages, forbidden=FORBIDDEN)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    count, _, leaked = out.stdout.strip().partition(" ")
    return int(count), leaked


def test_the_probe_catches_a_submodule_that_imports_torch(tmp_path: Path) -> None:
    """Guard against a probe that cannot fail: a nested torch import must be reported."""
    pytest.importorskip("torch")
    (tmp_path / "leaky" / "inner").mkdir(parents=True)
    (tmp_path / "leaky" / "__init__.py").write_text("")
    (tmp_path / "leaky" / "inner" / "__init__.py").write_text("")
    (tmp_path / "leaky" / "inner" / "deep.py").write_text("import torch\n")
    count, leaked = run_probe(("leaky",), tmp_path)
    assert count == 3 and leaked == "torch"
