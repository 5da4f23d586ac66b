"""The shipped demo models: checksums, sight, CLIP judgement, loading by registry name."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import torch

from captune.demo.accuracy import object_accuracy
from captune.demo.captioner import GREEDY, caption
from captune.demo.clip import CLIPSCORE_PREFIX, clipscore, embed_images, embed_texts, pixel_tensor, recolour
from captune.demo.scene import Scene
from captune.demo.shipped import WEIGHTS_DIR, load_shipped, read_manifest, shipped_path
from captune.errors import CaptuneError


@pytest.fixture(scope="module")
def fresh_world(tmp_path_factory):
    """20 images the shipped models never saw (the build trains on seed 0 and measures on seed 1)."""
    from captune.demo.world import generate

    return generate(tmp_path_factory.mktemp("fresh"), n_images=20, seed=12345, style="plain")


@pytest.fixture(scope="module")
def shipped_captioner():
    return load_shipped("shapes-captioner")


def test_manifest_lists_every_shipped_file_with_its_checksum():
    manifest = read_manifest()
    on_disk = {p.relative_to(WEIGHTS_DIR).as_posix() for p in WEIGHTS_DIR.rglob("*")
               if p.is_file() and p.name != "MANIFEST.json"}
    assert set(manifest["files"]) == on_disk
    assert {"captioner/model.safetensors", "clip/model.safetensors"} <= on_disk
    assert manifest["command"].startswith("captune demo build-base")
    assert sum(manifest["bytes"].values()) < 10e6


def test_a_corrupted_file_is_refused_with_its_name(tmp_path):
    root = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, root)
    shipped_path("captioner", root)  # an intact copy passes
    weights = root / "captioner" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CaptuneError, match=r"captioner/model\.safetensors does not match its checksum"):
        load_shipped("shapes-captioner", root)
    shipped_path("clip", root)  # the other model is still fine


def test_a_missing_file_is_named(tmp_path):
    root = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, root)
    (root / "clip" / "tokenizer.json").unlink()
    with pytest.raises(CaptuneError, match=r"clip/tokenizer\.json is missing"):
        shipped_path("clip", root)


def test_unknown_kind_is_refused():
    with pytest.raises(CaptuneError, match="unknown shipped model"):
        shipped_path("shapes-gpt")


def test_captioner_names_colours_shapes_and_sizes_of_fresh_images(shipped_captioner, fresh_world):
    model, processor = shipped_captioner
    images = [str(fresh_world.out_dir / r.image) for r in fresh_world.plain]
    captions = caption(model, processor, images, GREEDY)
    scenes = [fresh_world.scenes[r.image_id] for r in fresh_world.plain]
    figures = object_accuracy(captions, scenes)
    # chance is 1/8 for a colour, 1/6 for a shape, 1/2 for a size
    assert figures["colour"] >= 0.75, list(zip(captions, [s.describe() for s in scenes]))
    assert figures["shape"] >= 0.6 and figures["naming"] >= 0.6 and figures["size"] >= 0.75
    assert figures["count"] >= 0.5
    # and the manifest holds the same kind of figures on 200 held-out images
    greedy = read_manifest()["figures"]["captioner"]["greedy"]
    assert greedy["colour"] > 0.8 and greedy["shape"] > 0.5


def test_captioner_output_depends_on_the_image(shipped_captioner, fresh_world):
    model, processor = shipped_captioner
    images = [str(fresh_world.out_dir / r.image) for r in fresh_world.plain]
    assert len(set(caption(model, processor, images, GREEDY))) >= 15


def test_registry_name_loads_the_shipped_captioner():
    from captune.models.loading import load_captioner
    from captune.models.registry import REGISTRY

    assert REGISTRY["shapes-blip2-opt"].checkpoint == "builtin:shapes-captioner"
    model, processor = load_captioner("shapes-blip2-opt")
    assert type(model).__name__ == "Blip2ForConditionalGeneration" and model.dtype == torch.float32
    assert processor.num_query_tokens == model.config.num_query_tokens
    assert model.config.image_token_index == processor.tokenizer.convert_tokens_to_ids("<image>")


def test_clip_prefers_the_true_caption_to_wrong_colours(fresh_world):
    from transformers import CLIPModel, CLIPProcessor

    from captune.data.images import load_image

    folder = shipped_path("clip")
    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    records = fresh_world.plain
    images = embed_images(model, pixel_tensor(processor, [load_image(fresh_world.out_dir / r.image) for r in records]))
    rng = random.Random(0)
    true = [CLIPSCORE_PREFIX + r.captions[0] for r in records]
    wrong = [CLIPSCORE_PREFIX + recolour(r.captions[0], rng) for r in records]
    right_score = clipscore(images, embed_texts(model, processor.tokenizer, true))
    wrong_score = clipscore(images, embed_texts(model, processor.tokenizer, wrong))
    assert float((right_score > wrong_score).float().mean()) >= 0.8
    # and each image's own caption is among its best matches of the 20
    sims = images @ embed_texts(model, processor.tokenizer, true).T
    own_rank = (sims > sims.diagonal()[:, None]).sum(1)
    assert float((own_rank < 3).float().mean()) >= 0.7


def test_loaded_scenes_in_fixture_match_records(fresh_world):
    record = fresh_world.plain[0]
    assert Scene.from_json(record.meta["scene"]) == fresh_world.scenes[record.image_id]


@pytest.mark.slow
def test_build_base_end_to_end_writes_loadable_checksummed_models(tmp_path):
    from click.testing import CliRunner

    from captune.cli import cli

    out = tmp_path / "base"
    args = ["demo", "build-base", "--out", str(out), "--images", "48", "--captioner-steps", "4",
            "--clip-steps", "4", "--vision-steps", "4", "--eval-images", "16", "--heldout-images", "16", "--json", "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert json.loads(result.output[result.output.index("{"):])["files"] == manifest["files"]
    for name in ("captioner/model.safetensors", "captioner/tokenizer.json", "captioner/processor_config.json",
                 "clip/model.safetensors", "clip/tokenizer.json", "clip/processor_config.json"):
        assert name in manifest["files"]
    assert manifest["figures"]["captioner"]["training"]["steps"] == 4
    assert manifest["figures"]["clip"]["training"]["steps"] == 4
    assert "--captioner-steps 4" in manifest["command"]
    model, processor = load_shipped("captioner", out)
    assert processor.num_query_tokens == model.config.num_query_tokens
    clip, _ = load_shipped("clip", out)
    assert type(clip).__name__ == "CLIPModel"
    # the same command writes the same bytes
    again = tmp_path / "again"
    args[args.index(str(out))] = str(again)
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert json.loads((again / "MANIFEST.json").read_text())["files"] == manifest["files"]
