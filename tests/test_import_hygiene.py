"""The serving path imports no operator tooling, and every module imports on its own."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import hmb


def test_the_app_does_not_import_textual_or_click():
    code = "import sys, hmb.app; print(sorted(m for m in ('textual', 'click') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_module_imports_on_its_own():
    names = [m.name for m in pkgutil.walk_packages(hmb.__path__, "hmb.") if not m.name.endswith("__main__")]
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)"
    result = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
