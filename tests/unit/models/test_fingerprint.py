"""Model identities found without loading: folders, the Hugging Face cache, shipped and built-in models."""

import hashlib

import pytest

from captune.demo.shipped import WEIGHTS_DIR
from captune.errors import CaptuneError
from captune.models import fingerprint
from captune.models.fingerprint import combine, model_weights, weights_sha256


def test_a_folder_is_identified_by_its_weight_files(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "pytorch_model.bin").write_bytes(b"old weights")  # from_pretrained reads the safetensors
    (tmp_path / "README.md").write_text("a model card")
    expected = combine([("model.safetensors", hashlib.sha256(b"weights").hexdigest())])
    assert weights_sha256(tmp_path) == expected and model_weights(str(tmp_path)) == "sha256:" + expected
    (tmp_path / "README.md").write_text("another model card")
    assert weights_sha256(tmp_path) == expected
    (tmp_path / "model.safetensors").write_bytes(b"retrained")
    assert weights_sha256(tmp_path) != expected
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptuneError, match="empty: no weight files"):
        weights_sha256(tmp_path / "empty")


def test_a_hugging_face_cache_snapshot_is_identified_by_its_blob_names(tmp_path, monkeypatch):
    content = b"the weights"
    digest = hashlib.sha256(content).hexdigest()
    repo = tmp_path / "hub" / "models--org--captioner"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / digest).write_bytes(content)
    (repo / "blobs" / ("c" * 40)).write_text("{}")
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(f"../../blobs/{digest}")
    (snapshot / "config.json").symlink_to(f"../../blobs/{'c' * 40}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))

    def no_reading(path):
        raise AssertionError(f"{path} was read: the blob's name is its sha256")

    monkeypatch.setattr(fingerprint, "file_sha256", no_reading)
    assert model_weights("org/captioner") == "sha256:" + combine([("model.safetensors", digest)])
    assert model_weights("org/not-downloaded") is None


def test_shipped_and_builtin_models():
    assert model_weights("shapes-blip2-opt") == "sha256:" + weights_sha256(WEIGHTS_DIR / "captioner")
    assert model_weights("tiny-blip2-opt") == "builtin:tiny-opt"
