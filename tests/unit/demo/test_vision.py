"""The captioner's ViT warm-up: sine-cosine positions, per-patch shape labels, the warm-up loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captune.demo.scene import COLOURS, SHAPES, Obj, Scene
from captune.demo.vision import (
    ATTRIBUTES,
    PatchHeads,
    VisionWarmup,
    covered_patches,
    fresh_batches,
    init_positions,
    patch_accuracy,
    patch_labels,
    sincos_positions,
    warm_up_vision,
)


def _vit(image_size=32, patch_size=8, hidden=32):
    from transformers import Blip2VisionConfig, Blip2VisionModel

    torch.manual_seed(0)
    config = Blip2VisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                               num_attention_heads=2, image_size=image_size, patch_size=patch_size,
                               initializer_range=0.02)
    return Blip2VisionModel(config)


def test_sincos_positions_make_neighbours_closer_than_far_patches():
    pos = sincos_positions(8, 64)
    assert pos.shape == (64, 64)
    sims = torch.nn.functional.normalize(pos, dim=1) @ torch.nn.functional.normalize(pos, dim=1).T
    # (row 3, col 3) against its right neighbour, the patch below it, and the far corner
    centre, right, below, corner = 3 * 8 + 3, 3 * 8 + 4, 4 * 8 + 3, 7 * 8 + 7
    assert sims[centre, right] > sims[centre, corner] and sims[centre, below] > sims[centre, corner]
    # the first half encodes the row: patches of one row share it
    assert torch.equal(pos[0, :32], pos[7, :32]) and not torch.equal(pos[0, :32], pos[8, :32])
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_positions(4, 30)


def test_init_positions_writes_the_grid_into_the_vit():
    vit = _vit()
    init_positions(vit)
    emb = vit.embeddings.position_embedding[0]
    assert torch.equal(emb[0], torch.zeros(32))
    assert torch.allclose(emb[1:], sincos_positions(4, 32))


def test_patch_labels_mark_the_patches_under_each_object_row_major():
    obj = Obj("star", "red", "solid", "small", x=0.25, y=0.75)  # columns 1-2, rows 5-6 of an 8x8 grid
    scene = Scene(objects=(obj,), relations=(), background="grey")
    labels = patch_labels(scene, 8)
    assert labels.shape == (len(ATTRIBUTES), 64) and list(ATTRIBUTES)[:2] == ["shape", "colour"]
    for row in labels:
        assert sorted(np.flatnonzero(row)) == [41, 42, 49, 50]
    assert set(labels[0][labels[0] > 0]) == {1 + SHAPES.index("star")}
    assert set(labels[1][labels[1] > 0]) == {1 + list(COLOURS).index("red")}
    assert covered_patches(obj, 8).sum() == 4


class _Oracle(torch.nn.Module):
    """A stand-in ViT whose patch outputs are the given labels; ``PatchHeads`` with an identity
    layout turns them back into one-hot logits."""

    def __init__(self, labels: torch.Tensor, grid: int):
        super().__init__()
        self.labels = labels  # [images, attributes, patches]
        self.embeddings = type("E", (), {"image_size": grid, "patch_size": 1})()

    def forward(self, pixel_values):
        labels = self.labels[pixel_values.long()]
        sizes = [1 + len(v) for v in ATTRIBUTES.values()]
        onehot = torch.cat([torch.nn.functional.one_hot(labels[:, k], n) for k, n in enumerate(sizes)], -1).float()
        return type("O", (), {"last_hidden_state": torch.cat([onehot[:, :1], onehot], dim=1)})()


def _identity_heads() -> PatchHeads:
    heads = PatchHeads(sum(1 + len(v) for v in ATTRIBUTES.values()))
    with torch.no_grad():
        heads.linear.weight.copy_(torch.eye(heads.linear.in_features))
        heads.linear.bias.zero_()
    return heads


def test_patch_accuracy_votes_by_majority_over_each_objects_patches(world):
    scenes = [world.scenes[r.image_id] for r in world.plain[:30]]
    truth = torch.tensor(np.stack([patch_labels(s, 8) for s in scenes]))
    heads, index = _identity_heads(), torch.arange(len(scenes))
    assert patch_accuracy(_Oracle(truth, 8), heads, index, scenes) == dict.fromkeys(ATTRIBUTES, 1.0)
    wrong = truth.clone()
    shapes = wrong[:, 0]
    shapes[shapes > 0] = 1 + (shapes[shapes > 0] % len(SHAPES))  # every shape one along, the rest right
    assert patch_accuracy(_Oracle(wrong, 8), heads, index, scenes) == {"shape": 0.0, "colour": 1.0,
                                                                        "material": 1.0, "size": 1.0}
    background = torch.zeros_like(truth)  # no votes at all counts as wrong
    assert set(patch_accuracy(_Oracle(background, 8), heads, index, scenes).values()) == {0.0}


def test_patch_heads_loss_is_zero_only_for_confident_right_answers():
    heads = _identity_heads()
    labels = torch.tensor([[[0, 1], [2, 0], [1, 1], [2, 0]]])  # one image, two patches
    sizes = [1 + len(v) for v in ATTRIBUTES.values()]
    onehot = torch.cat([torch.nn.functional.one_hot(labels[:, k], n) for k, n in enumerate(sizes)], -1).float()
    assert heads.loss(onehot * 50, labels) < 1e-6
    assert heads.loss(onehot * 50, torch.flip(labels, dims=[2])) > 10


def test_fresh_batches_draw_new_rendered_scenes_each_time():
    from captune.models.tiny import tiny_image_processor

    batches = fresh_batches(tiny_image_processor(32), batch_size=4, seed=2)
    (p1, s1), (p2, s2) = next(batches), next(batches)
    assert p1.shape == (4, 3, 32, 32) and len(s1) == 4 and s1 != s2 and not torch.equal(p1, p2)
    again = next(fresh_batches(tiny_image_processor(32), batch_size=4, seed=2))
    assert again[1] == s1 and torch.equal(again[0], p1)


def test_warm_up_trains_the_vit_and_is_seeded(world):
    from captune.demo.captioner import world_pixels
    from captune.models.tiny import tiny_image_processor

    processor = tiny_image_processor(32)
    held_pixels = world_pixels(type("P", (), {"image_processor": processor})(), world)[:16]
    held_scenes = [world.scenes[r.image_id] for r in world.plain[:16]]
    cfg = VisionWarmup(steps=6, batch_size=8)
    runs = []
    for _ in range(2):
        vit = _vit()
        before = vit.encoder.layers[0].mlp.fc1.weight.clone()
        figures = warm_up_vision(vit, fresh_batches(processor, 8, seed=1), cfg, seed=1,
                                 val=(held_pixels, held_scenes), progress=False)
        assert not torch.equal(before, vit.encoder.layers[0].mlp.fc1.weight) and not vit.training
        runs.append((vit.encoder.layers[0].mlp.fc1.weight.detach().clone(), figures))
    assert torch.equal(runs[0][0], runs[1][0])
    held_out = runs[0][1]["val_accuracy"]
    assert runs[0][1]["steps"] == 6 and set(held_out) == set(ATTRIBUTES)
    assert all(0.0 <= v <= 1.0 for v in held_out.values())
    assert np.isfinite(runs[0][1]["final_loss"])
