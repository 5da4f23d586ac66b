"""Captioning: decoding presets, resumable output, reload and merged export."""

import json
import os
import subprocess
import sys
import time

import pytest

from captune.config import load_config
from captune.errors import CaptuneError
from captune.generate import PRESETS, Decoding, caption_images, decoding_preset
from captune.io import read_jsonl
from captune.models.fingerprint import weights_sha256
from captune.train.config import TrainConfig
from captune.train.loop import finetune


@pytest.fixture(scope="module")
def trained(tmp_path_factory, colour_data_shared):
    """A tiny OPT captioner fine-tuned for a few steps on the colour squares."""
    root = tmp_path_factory.mktemp("gen")
    data = colour_data_shared
    cfg = load_config(TrainConfig, None, [
        f"data.train={data}", f"output_dir={root / 'run'}", "train.max_steps=30", "train.lr=3e-3",
        "train.batch_size=4", "finetune.targets=all_linear", "data.prompt=Colour of {event}:"])
    finetune(cfg)
    return data, root / "run" / "checkpoints" / "best"


def test_presets_map_to_generate_kwargs():
    assert PRESETS["greedy"].generate_kwargs()["num_beams"] == 1
    beam = decoding_preset("beam", num_beams=4, length_penalty=1.5).generate_kwargs()
    assert beam["num_beams"] == 4 and beam["length_penalty"] == 1.5 and beam["do_sample"] is False
    top_p = decoding_preset("top_p").generate_kwargs()
    assert top_p["do_sample"] and top_p["top_p"] == 0.9 and top_p["top_k"] == 0 and top_p["temperature"] == 0.7
    assert decoding_preset("top_k").generate_kwargs()["top_k"] == 50
    with pytest.raises(CaptuneError, match="unknown decoding preset"):
        decoding_preset("nucleus")
    with pytest.raises(CaptuneError, match="num_return_sequences"):
        Decoding(strategy="beam", num_beams=2, num_return_sequences=3).generate_kwargs()


def test_reload_generates_identical_captions_and_uses_training_prompt(trained, tmp_path):
    data, best = trained
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    sa = caption_images(data, a, adapter=str(best), decoding=PRESETS["greedy"])
    caption_images(data, b, adapter=str(best), decoding=PRESETS["greedy"])
    assert sa["prompt"] == "Colour of {event}:"
    rows_a, rows_b = read_jsonl(a), read_jsonl(b)
    assert [r["caption"] for r in rows_a] == [r["caption"] for r in rows_b]
    assert set(rows_a[0]) == {"image_id", "caption", "model", "adapter", "decoding", "model_weights",
                              "adapter_weights", "prompt", "dtype", "postprocess"}
    assert rows_a[0]["model"] == "tiny-blip2-opt" and rows_a[0]["decoding"]["strategy"] == "greedy"
    assert rows_a[0]["model_weights"] == "builtin:tiny-opt" and rows_a[0]["prompt"] == "Colour of {event}:"
    assert rows_a[0]["adapter_weights"] == "sha256:" + weights_sha256(best) and rows_a[0]["dtype"] == "float32"
    # The fine-tuned model names the colour it sees.
    right = sum(r["image_id"].split("_")[0] in r["caption"] for r in rows_a)
    assert right >= len(rows_a) // 2


def test_merged_export_generates_the_same_captions(trained, tmp_path):
    from captune.models.export import export_merged

    data, best = trained
    out = export_merged(best, tmp_path / "merged")
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    caption_images(data, tmp_path / "a.jsonl", adapter=str(best), decoding=PRESETS["beam"])
    caption_images(data, tmp_path / "b.jsonl", adapter=str(out), decoding=PRESETS["beam"])
    a = [r["caption"] for r in read_jsonl(tmp_path / "a.jsonl")]
    b = [r["caption"] for r in read_jsonl(tmp_path / "b.jsonl")]
    assert a == b
    with pytest.raises(CaptuneError, match="not empty"):
        export_merged(best, out)


def test_rerun_skips_done_and_cut_off_line_is_redone(trained, tmp_path):
    data, best = trained
    out = tmp_path / "p.jsonl"
    caption_images(data, out, adapter=str(best), decoding=PRESETS["greedy"])
    rows = out.read_text().splitlines()
    # Simulate a kill: four complete lines and half of the fifth.
    out.write_text("\n".join(rows[:4]) + "\n" + rows[4][:20])
    summary = caption_images(data, out, adapter=str(best), decoding=PRESETS["greedy"])
    assert summary["skipped"] == 4 and summary["captioned"] == len(rows) - 4
    ids = [r["image_id"] for r in read_jsonl(out)]
    assert sorted(ids) == sorted(json.loads(r)["image_id"] for r in rows) and len(ids) == len(set(ids))


def test_a_last_line_without_its_newline_is_kept_and_not_captioned_again(colour_data, tmp_path):
    """A whole last line that lacks only its newline (a file saved by an editor) counts as done:
    it must stay in the file, not be cut off as a partial line and so lost."""
    out = tmp_path / "p.jsonl"
    greedy = decoding_preset("greedy", max_new_tokens=4)
    caption_images(colour_data, out, model="tiny-blip2-opt", decoding=greedy)
    rows = out.read_text().splitlines()
    out.write_text("\n".join(rows[:5]))  # five whole lines, the fifth without "\n"
    summary = caption_images(colour_data, out, model="tiny-blip2-opt", decoding=greedy)
    assert summary["skipped"] == 5 and summary["captioned"] == len(rows) - 5
    assert out.read_text().splitlines() == rows


def test_an_image_id_naming_two_images_is_refused(colour_data, tmp_path):
    """Captions are keyed by image id: two images under one id would leave one uncaptioned and
    give the other's caption to the id. The same image listed twice is captioned once."""
    from captune.data.records import read_records, write_records

    records = read_records(colour_data)
    twice = colour_data.parent / "twice.jsonl"
    write_records(twice, records[:3] + [records[0]])
    assert caption_images(twice, tmp_path / "a.jsonl", model="tiny-blip2-opt",
                          decoding=decoding_preset("greedy", max_new_tokens=2))["images"] == 3
    records[1].image_id = records[0].image_id
    clash = colour_data.parent / "clash.jsonl"
    write_records(clash, records[:3])
    with pytest.raises(CaptuneError, match=rf"{records[0].image_id}.*{records[0].image}.*{records[1].image}"):
        caption_images(clash, tmp_path / "b.jsonl", model="tiny-blip2-opt")
    assert not (tmp_path / "b.jsonl").exists()


def test_killed_caption_process_resumes_each_image_once(trained, tmp_path):
    data, best = trained
    # More images than one batch, so the kill usually lands mid-run.
    out = tmp_path / "p.jsonl"
    cmd = [sys.executable, "-m", "captune", "caption", "--adapter", str(best), "--input", str(data),
           "--out", str(out), "--batch-size", "1", "--decoding", "beam", "--num-beams", "4"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:
            proc.kill()
            break
        time.sleep(0.02)
    proc.wait()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = [r["image_id"] for r in read_jsonl(out)]
    assert len(ids) == 12 and len(set(ids)) == 12


def test_caption_a_folder_with_a_base_model(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (20, 30), (i * 80, 10, 10)).save(tmp_path / f"im{i}.jpg")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (20, 30)).save(tmp_path / "sub" / "x.png")
    s = caption_images(tmp_path, tmp_path / "out.jsonl", model="tiny-blip2-t5",
                       decoding=decoding_preset("top_p", max_new_tokens=5, num_return_sequences=2))
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert s["captioned"] == 4 and {r["image_id"] for r in rows} == {"im0.jpg", "im1.jpg", "im2.jpg", "sub/x.png"}
    assert all(len(r["candidates"]) == 2 for r in rows)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptuneError, match="no images found"):
        caption_images(tmp_path / "empty", tmp_path / "o.jsonl", model="tiny-blip2-t5")


def test_generated_captions_are_tidied_unless_raw():
    from captune.data.clean import CleanConfig
    from captune.generate import tidy

    text = "a red circle  above a square #shapes thanks to @bob https://x.co/a"
    assert tidy(text) == "a red circle above a square"
    assert tidy(text, False) == text
    assert "#shapes" in tidy(text, CleanConfig(handles="strip"))


def _save_tiny(folder, seed):
    from captune.models.tiny import build_tiny_blip2

    model, processor = build_tiny_blip2("opt", seed=seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def test_a_model_folder_with_other_weights_is_refused(colour_data, tmp_path):
    folder = _save_tiny(tmp_path / "model", seed=0)
    out = tmp_path / "p.jsonl"
    caption_images(colour_data, out, model=folder, decoding=PRESETS["greedy"])
    _save_tiny(tmp_path / "model", seed=1)  # the same path, retrained weights
    weights = r"model weights: 'sha256:\w{64}' \(.*model\) here 'sha256:\w{64}'"
    with pytest.raises(CaptuneError, match=r"p.jsonl: line 1 .*" + weights):
        caption_images(colour_data, out, model=folder, decoding=PRESETS["greedy"])


def test_an_adapter_with_other_weights_is_refused(trained, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    data, best = trained
    adapter = shutil.copytree(best, tmp_path / "adapter")
    out = tmp_path / "p.jsonl"
    caption_images(data, out, adapter=str(adapter), decoding=PRESETS["greedy"])
    weights = load_file(adapter / "adapter_model.safetensors")
    save_file({k: v * 1.01 for k, v in weights.items()}, adapter / "adapter_model.safetensors")
    with pytest.raises(CaptuneError, match=r"line 1 .*adapter weights: 'sha256:\w{64}' here 'sha256:\w{64}'"):
        caption_images(data, out, adapter=str(adapter), decoding=PRESETS["greedy"])


@pytest.mark.parametrize("change", [
    {"prompt": "a photo of"},
    {"postprocess": False},
    {"decoding": decoding_preset("greedy", max_new_tokens=7)},
    {"dtype": "bfloat16"},
])
def test_settings_that_change_a_caption_are_not_reused(colour_data, tmp_path, change):
    out = tmp_path / "p.jsonl"
    base = {"model": "tiny-blip2-opt", "decoding": PRESETS["greedy"]}
    caption_images(colour_data, out, **base)
    field = {"prompt": "prompt", "postprocess": "postprocess", "decoding": "max_new_tokens",
             "dtype": "dtype: 'float32' here 'bfloat16'"}[next(iter(change))]
    with pytest.raises(CaptuneError, match=f"line 1 .*{field}.*delete"):
        caption_images(colour_data, out, **(base | change))


def test_sampled_captions_depend_on_the_image_not_on_batches_or_resuming(colour_data, tmp_path):
    top_p = decoding_preset("top_p", max_new_tokens=6)

    def run(name, batch_size, keep=0, seed=None):
        out = tmp_path / name
        if keep:
            out.write_text("".join(line + "\n" for line in (tmp_path / "whole.jsonl").read_text().splitlines()[:keep]))
        dec = top_p if seed is None else decoding_preset("top_p", max_new_tokens=6, seed=seed)
        caption_images(colour_data, out, model="tiny-blip2-opt", decoding=dec, batch_size=batch_size)
        return {r["image_id"]: r["caption"] for r in read_jsonl(out)}

    whole = run("whole.jsonl", 4)
    assert len(whole) == 12 and run("other_seed.jsonl", 4, seed=1) != whole  # the captions are sampled
    assert run("by_two.jsonl", 2) == whole
    assert run("resumed.jsonl", 4, keep=5) == whole  # killed after 5 images: the batches start elsewhere


def test_sampler_draws_from_the_warped_distribution():
    import torch

    from captune.generate import ItemSampler

    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    rows = 4000
    sampler = ItemSampler(decoding_preset("top_p", top_p=0.9, temperature=1.0), [f"img{i}" for i in range(rows)])
    picked = sampler(torch.zeros(rows, 1, dtype=torch.long), logits.repeat(rows, 1)).argmax(-1)
    freq = torch.bincount(picked, minlength=4).double() / rows
    # top_p 0.9 keeps 0.5, 0.3, 0.15 (renormalised over 0.95); the standard error is below 0.008.
    assert freq.tolist() == pytest.approx([0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0], abs=0.03)
    again = ItemSampler(decoding_preset("top_p", top_p=0.9, temperature=1.0), [f"img{i}" for i in range(rows)])
    assert torch.equal(again(torch.zeros(rows, 1, dtype=torch.long), logits.repeat(rows, 1)).argmax(-1), picked)


def test_auto_dtype_is_bfloat16_on_a_cuda_gpu_and_float32_on_cpu(monkeypatch):
    import torch

    from captune.models.loading import load_captioner, resolve_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_dtype("auto") == "float32" and resolve_dtype("float16") == "float16"
    assert load_captioner("tiny-blip2-opt", dtype="auto")[0].dtype == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert resolve_dtype("auto") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_dtype("auto") == "float32"  # emulated bfloat16 (before Ampere) is slow: stay in float32
    with pytest.raises(CaptuneError, match="dtype 'fp8'"):
        resolve_dtype("fp8")


def test_prefetching_threads_give_the_same_captions(colour_data, monkeypatch):
    import threading

    from captune.generate import generate_captions, items_from_input
    from captune.models.blip2 import Blip2Batcher, Blip2Captioner
    from captune.models.tiny import build_tiny_blip2

    net, processor = build_tiny_blip2("opt")
    captioner, batcher = Blip2Captioner(net).eval(), Blip2Batcher(processor, net.config)
    items = items_from_input(colour_data)
    decodings = [decoding_preset("greedy", max_new_tokens=6), decoding_preset("beam", max_new_tokens=6)]
    threads = set()
    real = batcher.generation_batch
    monkeypatch.setattr(batcher, "generation_batch",
                        lambda examples: threads.add(threading.current_thread().name) or real(examples))
    inline = generate_captions(captioner, batcher, items, decodings, "", batch_size=3)
    assert threads == {threading.current_thread().name}
    threads.clear()
    ahead = generate_captions(captioner, batcher, items, decodings, "", batch_size=3, workers=2)
    assert threads and all(name.startswith("captune-images") for name in threads)  # prepared in the pool
    assert ahead == inline and len(inline[0]) == len(items) == 12


def _plain_transformers_caption(model, processor, image, prompt: str) -> str:
    """A greedy caption with transformers alone, as a user of the exported folder would write it."""
    if type(model).__name__ == "LlavaForConditionalGeneration":
        inputs = processor(images=image, text=f"USER: <image>\n{prompt} ASSISTANT:", return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=30, min_new_tokens=4, do_sample=False, num_beams=1)
        out = out[:, inputs["input_ids"].shape[1]:]  # the conversation comes first
    else:  # BLIP, no prompt: generate starts the caption from [DEC]
        out = model.generate(**processor(images=image, return_tensors="pt"), max_new_tokens=30, min_new_tokens=4,
                             num_beams=1)
    return " ".join(processor.batch_decode(out, skip_special_tokens=True)[0].split())


@pytest.mark.parametrize("name,model_class,prompt", [
    ("tiny-llava", "LlavaForConditionalGeneration", "Colour of {event}:"),
    ("tiny-blip", "BlipForConditionalGeneration", ""),
])
def test_merged_export_of_each_family_loads_with_plain_transformers(colour_data, tmp_path, name, model_class, prompt):
    """The merged folder loads with the family's transformers class and processor alone and
    captions exactly as captune does with the adapter."""
    import transformers
    from PIL import Image

    from captune.models.export import export_merged
    from captune.models.prompt import render_prompt

    overrides = [f"data.train={colour_data}", f"output_dir={tmp_path / 'run'}", f"model.name={name}",
                 "train.max_steps=6", "train.lr=3e-3", "train.batch_size=4", "finetune.targets=all_linear"]
    finetune(load_config(TrainConfig, None, overrides + ([f"data.prompt={prompt}"] if prompt else [])))
    best = tmp_path / "run" / "checkpoints" / "best"
    out = export_merged(best, tmp_path / "merged")
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    model = getattr(transformers, model_class).from_pretrained(out).eval()
    processor = transformers.AutoProcessor.from_pretrained(out)
    greedy = decoding_preset("greedy", min_new_tokens=4)  # at least a few words from a barely trained model
    caption_images(colour_data, tmp_path / "p.jsonl", adapter=str(best), decoding=greedy, postprocess=False)
    rows = read_jsonl(tmp_path / "p.jsonl")[:4]
    meta = {"event": "colours"}
    plain = [_plain_transformers_caption(model, processor, Image.open(colour_data.parent / r["image_id"]).convert("RGB"),
                                         render_prompt(prompt, meta)) for r in rows]
    assert plain == [r["caption"] for r in rows] and all(plain)


@pytest.mark.parametrize("family", ["opt", "t5", "llava", "blip"])
def test_each_family_captions_a_batch_as_it_captions_each_image_alone(family):
    """Prompts of different lengths in one batch, greedy, beam with two captions per image and
    nucleus sampling with two: every image gets the captions it gets alone. (With the prompts
    padded on the right, or without the attention mask, the decoder-only families differ here.)"""
    import numpy as np
    from PIL import Image

    from captune.generate import CaptionItem, generate_captions
    from captune.models.family import adapt
    from captune.models.tiny import build_tiny_blip, build_tiny_blip2, build_tiny_llava

    build = {"opt": lambda: build_tiny_blip2("opt"), "t5": lambda: build_tiny_blip2("t5"),
             "llava": build_tiny_llava, "blip": build_tiny_blip}[family]
    captioner, batcher = adapt(*build())
    rng = np.random.default_rng(0)
    prompts = ["Colour of the spring fair and the big red stage:", "", "hi", "a photo of", "Focus on: stage, crowd."]
    items = [CaptionItem(f"im{i}", Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)), {}, prompt=p)
             for i, p in enumerate(prompts)]
    decodings = [decoding_preset("greedy", max_new_tokens=8),
                 decoding_preset("beam", max_new_tokens=8, num_beams=3, num_return_sequences=2),
                 decoding_preset("top_p", max_new_tokens=8, num_return_sequences=2)]
    alone = generate_captions(captioner.eval(), batcher, items, decodings, "", batch_size=1)
    batched = generate_captions(captioner, batcher, items, decodings, "", batch_size=5)
    assert batched == alone
    assert all(len(set(map(tuple, per_image))) > 1 for per_image in alone)  # the images get different captions
