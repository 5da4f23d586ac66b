"""SPICE without the CoreNLP jars: unavailable, with the files, the place and the way to get them."""

from __future__ import annotations

import pytest

from captune.metrics import score, spice
from captune.metrics.base import MetricUnavailable


def test_unavailable_names_missing_files_place_and_fix(monkeypatch, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "spice-1.0.jar").write_bytes(b"")
    (tmp_path / "lib" / "stanford-corenlp-3.6.0.jar").write_bytes(b"")  # the models jar is missing
    monkeypatch.setattr(spice, "spice_dir", lambda: tmp_path)
    with pytest.raises(MetricUnavailable) as e:
        spice.spice(["a dog"], [["a dog runs"]])
    message = str(e.value)
    assert str(tmp_path / "lib" / "stanford-corenlp-3.6.0-models.jar") in message
    assert str(tmp_path / "lib" / "stanford-corenlp-3.6.0.jar,") not in message  # present: not listed
    assert f"looked in {tmp_path / 'lib'}" in message
    assert "get_stanford_models" in message and "stanford-corenlp-full-2015-12-09.zip" in message


def test_reported_as_unavailable_not_zero(monkeypatch, tmp_path):
    monkeypatch.setattr(spice, "spice_dir", lambda: tmp_path)
    scores = score(["a dog"], [["a dog runs"]], metrics=["spice", "cider"])
    assert "spice" not in scores.corpus and "CoreNLP" in scores.unavailable["spice"]
    assert scores.to_json()["spice"] is None and "spice" in scores.to_json()["unavailable"]


def test_shipped_package_lacks_the_models():
    # pycocoevalcap downloads CoreNLP on first use; the wheel has no CoreNLP jar
    assert any(p.name.startswith("stanford-corenlp-3.6.0") for p in spice.missing_files())
