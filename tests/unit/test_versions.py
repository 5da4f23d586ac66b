"""Declared minimum versions: the import-time transformers check, the floors CI installs, and what
a machine without Java or Chromium does with the tests that need them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import captune

ROOT = Path(__file__).resolve().parents[2]


def _floors_module():
    spec = importlib.util.spec_from_file_location("ci_floors", ROOT / ".ci" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_import_refuses_an_old_transformers(tmp_path):
    (tmp_path / "transformers-4.57.6.dist-info").mkdir()  # first on sys.path: what `import transformers` finds
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", "import captune"], capture_output=True, text=True, timeout=120,
                         env=env, check=False)
    assert out.returncode != 0
    assert (
        "ImportError: captune needs transformers >= 5.18, but transformers 4.57.6 is installed: "
        "pip install -U 'transformers>=5.18'"
    ) in out.stderr


def test_the_installed_version_is_the_one_importlib_metadata_reports():
    for name in ("transformers", "numpy", "click"):
        assert captune._installed_version(name) == metadata.version(name)
    assert captune._installed_version("no-such-distribution-here") is None


@pytest.mark.parametrize(
    "version, ok",
    [("5.17.9", False), ("5.9.0", False), ("4.99.0", False), ("5.18.0", True), ("5.18.0.dev0", True),
     ("6.0.1", True), (None, True)],
)
def test_transformers_floor_boundary(monkeypatch, version, ok):
    monkeypatch.setattr(captune, "_installed_version", lambda name: version if name == "transformers" else None)
    if ok:
        captune._check_transformers()
    else:
        with pytest.raises(ImportError, match=f"transformers {version} is installed"):
            captune._check_transformers()


def test_import_check_and_pyproject_declare_the_same_floor():
    deps = _floors_module().dependencies(ROOT / "pyproject.toml")
    assert "transformers>={}.{}".format(*captune.MIN_TRANSFORMERS) in deps


def test_ci_floors_pin_each_declared_minimum(tmp_path):
    floors = _floors_module()
    pyproject = tmp_path / "pyproject.toml"
    deps = [f"{name}>=1.{i}" for i, name in enumerate(floors.FLOORED)] + ["torch>=2.5", "click>=8.1"]
    pyproject.write_text("[project]\ndependencies = [" + ", ".join(f'"{d}"' for d in deps) + "]\n")
    assert floors.floors(pyproject) == [f"{name}==1.{i}" for i, name in enumerate(floors.FLOORED)]
    pyproject.write_text('[project]\ndependencies = ["transformers>=5.18", "peft"]\n')
    with pytest.raises(SystemExit, match="no 'NAME>=VERSION' dependency for peft, accelerate,"):
        floors.floors(pyproject)
    assert "transformers==5.18" in floors.floors(ROOT / "pyproject.toml")


def _run_needing_tools(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    """pytest on one java and one browser test with an empty PATH (no java, no chromium)."""
    env = {k: v for k, v in os.environ.items() if k != "CAPTUNE_CI"}
    env.update(PATH=str(tmp_path), **({"CAPTUNE_CI": "1"} if ci else {}))
    tests = [
        "tests/unit/metrics/test_meteor.py::test_one_process_for_100_calls_restarted_if_dead_and_stopped_by_close",
        "tests/browser/test_report_browser.py::test_report_renders_in_chromium",
    ]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider", "-q", "-rs"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_without_java_or_chromium_tests_skip_saying_how_to_install(tmp_path):
    out = _run_needing_tools(tmp_path, ci=False)
    assert out.returncode == 0, out.stdout[-2000:]
    assert "no Java runtime on PATH: install one (apt-get install -y default-jre-headless)" in out.stdout
    assert "install Debian's Chromium (apt-get install -y chromium)" in out.stdout
    assert "2 skipped" in out.stdout


def test_under_ci_a_missing_java_or_chromium_fails(tmp_path):
    out = _run_needing_tools(tmp_path, ci=True)
    assert out.returncode == 1, out.stdout[-2000:]
    assert "(CAPTUNE_CI=1: java tests must run)" in out.stdout
    assert "(CAPTUNE_CI=1: browser tests must run)" in out.stdout
    assert "2 errors" in out.stdout and "skipped" not in out.stdout
