import pytest
import torch

from captune.errors import CaptuneError, ModelNotFoundError
from captune.models.loading import load_captioner
from captune.models.registry import list_models
from captune.models.tiny import build_tiny_blip2, build_tiny_tokenizer


def test_tiny_models_are_deterministic():
    a, pa = build_tiny_blip2("opt")
    b, pb = build_tiny_blip2("opt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert pa.tokenizer.get_vocab() == pb.tokenizer.get_vocab()
    c, _ = build_tiny_blip2("opt", seed=1)
    assert not torch.equal(a.language_projection.weight, c.language_projection.weight)


def test_tokenizer_shapes():
    opt, t5 = build_tiny_tokenizer("opt"), build_tiny_tokenizer("t5")
    assert opt("a red circle")["input_ids"][0] == opt.bos_token_id
    assert t5("a red circle")["input_ids"][-1] == t5.eos_token_id
    text = "Moments from Spring Fair: a café, 3 stars ✨"
    assert opt.decode(opt(text, add_special_tokens=False)["input_ids"]) == text


def test_registry_and_loading_by_name_and_directory(tmp_path):
    names = {e.name for e in list_models()}
    assert {"blip2-opt-2.7b", "blip2-flan-t5-xl", "tiny-blip2-opt", "tiny-blip2-t5"} <= names
    model, processor = load_captioner("tiny-blip2-t5")
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    again, p2 = load_captioner(str(tmp_path / "m"))
    assert torch.equal(again.language_projection.weight, model.language_projection.weight)
    assert p2.num_query_tokens == model.config.num_query_tokens


@pytest.mark.parametrize("name,model_class", [("tiny-llava", "LlavaForConditionalGeneration"),
                                              ("tiny-blip", "BlipForConditionalGeneration")])
def test_each_family_loads_by_name_and_from_a_saved_folder(tmp_path, name, model_class):
    """A folder is loaded with the transformers class its config names (found through its family)."""
    assert {"llava-1.5-7b", "blip-base", "blip-large", name} <= {e.name for e in list_models()}
    model, processor = load_captioner(name)
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    again, _ = load_captioner(str(tmp_path / "m"))
    assert type(again).__name__ == type(model).__name__ == model_class
    from captune.models.registry import lookup

    assert lookup(name).params == f"{round(sum(p.numel() for p in model.parameters()) / 1e3)}K"
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_missing_weights_say_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as e:
        load_captioner("blip2-opt-2.7b")
    msg = str(e.value)
    assert "Salesforce/blip2-opt-2.7b" in msg and "cache" in msg and "download" in msg
    with pytest.raises(ModelNotFoundError, match="no directory"):
        load_captioner(str(tmp_path / "missing" / "model"))


def test_t5_refuses_float16():
    with pytest.raises(CaptuneError, match="float16"):
        load_captioner("tiny-blip2-t5", dtype="float16")


def test_older_processor_without_query_tokens_is_repaired():
    from captune.models.blip2 import ensure_image_tokens

    model, processor = build_tiny_blip2("opt")
    processor.num_query_tokens = None
    ensure_image_tokens(model, processor)
    assert processor.num_query_tokens == model.config.num_query_tokens


def test_qlora_without_cuda_says_what_is_missing():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(CaptuneError, match="needs a CUDA GPU"):
        load_captioner("tiny-blip2-opt", quantization="4bit")


@pytest.mark.gpu
def test_qlora_4bit_trains_on_cuda(tmp_path):
    """QLoRA end to end on a tiny checkpoint saved to disk (runs where CUDA and bitsandbytes are)."""
    from peft import prepare_model_for_kbit_training
    from PIL import Image

    from captune.models.blip2 import Blip2Batcher, Blip2Captioner, Example
    from captune.models.peft import FinetuneConfig, apply_finetuning

    model, processor = build_tiny_blip2("opt")
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    q, proc = load_captioner(str(tmp_path / "m"), dtype="bfloat16", quantization="4bit")
    assert "Linear4bit" in {type(m).__name__ for m in q.language_model.modules()}
    net = apply_finetuning(prepare_model_for_kbit_training(q), FinetuneConfig())
    cap = Blip2Captioner(net)
    batch = Blip2Batcher(proc, cap.blip2.config).train_batch(
        [Example(Image.new("RGB", (32, 32), c), "", "a square") for c in ("red", "blue")])
    loss = cap(**{k: v.cuda() for k, v in batch.items()}).loss
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None for p in net.parameters() if p.requires_grad)
