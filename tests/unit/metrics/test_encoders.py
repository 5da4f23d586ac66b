"""Loading encoders by path, the caller's cache (MetricResources) and its bound, and what a missing model says."""

from __future__ import annotations

import pytest
import torch
from tiny_encoders import build_tiny_bert, build_tiny_clip

from captune.errors import ModelNotFoundError
from captune.hub import hub_cache_dir
from captune.metrics import MetricResources
from captune.metrics.encoders import load_encoder, max_length, resolve_device


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("bert"))


def test_loads_by_path_once_per_device(bert_dir):
    resources = MetricResources()
    enc = load_encoder(bert_dir, "cpu", resources=resources)
    assert enc.name == str(bert_dir)
    assert enc.device == "cpu" and not enc.model.training
    assert next(enc.model.parameters()).dtype == torch.float32
    assert enc.tokenizer("a red circle")["input_ids"][0] == enc.tokenizer.cls_token_id
    assert load_encoder(str(bert_dir), "cpu", resources=resources) is enc
    assert load_encoder(bert_dir, "cpu") is not enc  # without resources nothing is kept
    resources.close()
    assert len(resources.encoders) == 0
    assert load_encoder(bert_dir, "cpu", resources=resources) is not enc


def test_loaded_encoders_stay_within_their_bound(tmp_path, bert_dir):
    resources = MetricResources(encoders=2)
    dirs = [bert_dir, build_tiny_bert(tmp_path / "b2"), build_tiny_bert(tmp_path / "b3")]
    first = [load_encoder(d, "cpu", resources=resources) for d in dirs]
    assert len(resources.encoders) == 2  # the least recently used (the first) was dropped
    assert load_encoder(dirs[2], "cpu", resources=resources) is first[2]
    assert load_encoder(dirs[0], "cpu", resources=resources) is not first[0]
    assert len(resources.encoders) == 2


def test_clip_loads_a_pil_image_processor(tmp_path):
    import transformers
    from PIL import Image

    enc = load_encoder(build_tiny_clip(tmp_path / "clip"), "cpu", images=True)
    pixels = enc.image_processor(images=[Image.new("RGB", (50, 40), "red")], return_tensors="pt")[
        "pixel_values"
    ]
    assert tuple(pixels.shape) == (1, 3, 32, 32)
    if int(transformers.__version__.split(".")[0]) >= 5:
        assert type(enc.image_processor).__name__.endswith("Pil")  # no torchvision backend


def test_default_device_follows_cuda():
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("auto") == resolve_device(None)
    assert resolve_device("cuda:1") == "cuda:1"


def test_missing_directory_names_the_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        load_encoder(missing, "cpu")


def test_directory_without_weights_says_what_is_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError) as err:
        load_encoder(tmp_path / "empty", "cpu")
    assert str(tmp_path / "empty") in str(err.value) and "config.json" in str(err.value)


def test_unknown_hub_name_offline_says_where_it_looked_and_how_to_get_it():
    with pytest.raises(ModelNotFoundError) as err:
        load_encoder("captune-test/not-a-model", "cpu")
    message = str(err.value)
    assert "captune-test/not-a-model" in message
    assert hub_cache_dir() in message
    assert "hf download captune-test/not-a-model" in message
    assert "offline" in message


def test_max_length_falls_back_on_sentinel():
    class Tok:
        model_max_length = int(1e30)

    assert max_length(Tok()) == 512
    Tok.model_max_length = 77
    assert max_length(Tok()) == 77
