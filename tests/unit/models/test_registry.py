"""The model registry: built-in names, names added with ``register``, and the shipped demo's names,
which arrive through the ``captune.models`` entry point rather than an import from ``captune.models``."""

import json
import subprocess
import sys

import pytest

from captune.errors import CaptuneError
from captune.models import registry
from captune.models.registry import ModelEntry, lookup, register


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))


def test_register_adds_a_name_that_load_captioner_builds_with_its_loader(clean_registry):
    from captune.models.loading import load_captioner
    from captune.models.tiny import build_tiny_blip2

    calls = []

    def load():
        calls.append(1)
        return build_tiny_blip2("opt")

    register(ModelEntry("my-captioner", "builtin:mine", "opt", "93K", "a plugin's model", loader=load))
    model, _ = load_captioner("my-captioner")
    assert calls == [1] and type(model).__name__ == "Blip2ForConditionalGeneration"
    assert "my-captioner" in {e.name for e in registry.list_models()}


def test_a_builtin_checkpoint_without_a_loader_is_refused(clean_registry):
    with pytest.raises(ValueError, match="needs a loader"):
        register(ModelEntry("broken", "builtin:broken", "opt", "1K", "no loader"))


def test_the_shipped_clip_is_registered_but_is_not_a_captioner():
    from captune.demo.shipped import WEIGHTS_DIR
    from captune.models.fingerprint import model_weights, weights_sha256
    from captune.models.loading import load_captioner

    assert lookup("shapes-clip").task == "clip"
    assert model_weights("shapes-clip") == "sha256:" + weights_sha256(WEIGHTS_DIR / "clip")
    with pytest.raises(CaptuneError, match="not a captioner"):
        load_captioner("shapes-clip")


def test_shipped_entries_state_the_manifest_parameter_counts():
    from captune.demo.shipped import read_manifest

    figures = read_manifest()["figures"]
    assert lookup("shapes-blip2-opt").params == f"{figures['captioner']['params'] / 1e6:.1f}M"
    assert lookup("shapes-clip").params == f"{round(figures['clip']['params'] / 1e3)}K"


def test_a_fresh_process_finds_the_demo_names_through_the_entry_point_only():
    code = (
        "import sys, json\n"
        "from captune.models.registry import lookup\n"
        "e = lookup('shapes-blip2-opt')\n"
        "print(json.dumps({'entry': e.to_json(), 'demo_loaded': 'captune.demo.shipped' in sys.modules,"
        " 'torch': 'torch' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    assert found["entry"]["checkpoint"] == "builtin:shapes-captioner" and found["entry"]["task"] == "captioner"
    # the registry found the demo through its entry point and imported no torch to do so
    assert found["demo_loaded"] and not found["torch"]


def test_a_failing_plugin_is_named_in_a_warning_and_skipped(monkeypatch):
    class BrokenEntryPoint:
        name, value = "broken", "nowhere:register"

        def load(self):
            raise ImportError("No module named 'nowhere'")

    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [BrokenEntryPoint()])
    with pytest.warns(UserWarning, match=r"'broken' \(nowhere:register\) failed to register"):
        registry.load_entry_points()
