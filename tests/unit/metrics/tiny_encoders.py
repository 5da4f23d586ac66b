"""Tiny encoders built from configs, with tokenizers trained on the fly, saved to a directory.

The metric tests load them by path through ``captune.metrics.encoders``, as users load real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

CORPUS = [
    "a photo depicts a red circle on a white background",
    "a blue square next to a green triangle",
    "two small yellow stars above a large black square",
    "a dog runs on the grass with a red ball",
    "a cat is sitting on a wooden chair near the window",
    "the man wears a leather jacket and blue jeans",
    "a woman in a red dress holds an orange umbrella",
    "rubber boots and a canvas bag on the floor",
    "children play football in the park at sunset",
    "an empty street at night with bright lights",
]


def _word_tokenizer(corpus: list[str], specials: list[str], template: tuple[str, str]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    first, last = template
    tok.post_processor = processors.TemplateProcessing(
        single=f"{first} $A {last}",
        special_tokens=[(first, tok.token_to_id(first)), (last, tok.token_to_id(last))],
    )
    return tok


def build_tiny_clip(path: Path, seed: int = 0) -> Path:
    """A CLIPModel (32x32 images, 8x8 patches, 16-d projection) with tokenizer and image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    tok = _word_tokenizer(CORPUS, ["[PAD]", "[UNK]", "<bos>", "<eos>"], ("<bos>", "<eos>"))
    bos, eos = tok.token_to_id("<bos>"), tok.token_to_id("<eos>")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="[PAD]",
        unk_token="[UNK]",
        model_max_length=24,
    )
    text = {
        "vocab_size": tok.get_vocab_size(),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 24,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": 0,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        path
    )
    return path


def build_tiny_bert(path: Path, seed: int = 0, layers: int = 3) -> Path:
    """A BertModel (32-d, ``layers`` layers) with a WordPiece tokenizer saved as BertTokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tok = _word_tokenizer(CORPUS, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], ("[CLS]", "[SEP]"))
    fast = BertTokenizerFast(
        tokenizer_object=tok,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def build_tiny_roberta(path: Path, seed: int = 0) -> Path:
    """A RobertaModel (2 layers) with a byte-level BPE tokenizer saved as RobertaTokenizer."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.post_processor = processors.RobertaProcessing(
        ("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>"))
    )
    tok = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, model_max_length=60)
    cfg = RobertaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    RobertaModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_tiny_deberta(path: Path, seed: int = 0) -> Path:
    """A DebertaModel (DeBERTa v1, 2 layers) with a byte-level BPE tokenizer saved as DebertaTokenizer."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import DebertaConfig, DebertaModel, DebertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=400, special_tokens=["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"])
    bpe.post_processor = processors.BertProcessing(
        ("[SEP]", bpe.token_to_id("[SEP]")), ("[CLS]", bpe.token_to_id("[CLS]"))
    )
    tok = DebertaTokenizer(
        tokenizer_object=bpe._tokenizer, bos_token="[CLS]", eos_token="[SEP]", cls_token="[CLS]",
        sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]", model_max_length=60,
    )
    cfg = DebertaConfig(vocab_size=bpe.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    DebertaModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_tiny_t5(path: Path, seed: int = 0) -> Path:
    """A T5Model (3 layers) whose encoder ends in a final RMS norm with non-unit weights (a norm of
    weight 1 would hide whether it is applied), with a WordPiece tokenizer that appends ``</s>``."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5Model

    tok = _word_tokenizer(CORPUS, ["<pad>", "</s>", "<unk>", "<s>"], ("<s>", "</s>"))
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", model_max_length=64
    )
    cfg = T5Config(vocab_size=tok.get_vocab_size(), d_model=32, d_kv=16, d_ff=64, num_layers=3, num_heads=2,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(seed)
    model = T5Model(cfg)
    with torch.no_grad():
        model.encoder.final_layer_norm.weight.uniform_(0.5, 1.5)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def build_tiny_siglip(path: Path, seed: int = 0) -> Path:
    """A SiglipModel (32x32 images, 16 text positions) with a tokenizer that appends ``</s>``.

    SigLIP's text tower pools the last position, padding or not: it was trained on texts padded
    to the full length, so that is how its text must be encoded."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipImageProcessor, SiglipModel

    tok = _word_tokenizer(CORPUS, ["<pad>", "</s>", "<unk>"], ("<unk>", "</s>"))
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", model_max_length=16
    )
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    text = {**layers, "vocab_size": tok.get_vocab_size(), "max_position_embeddings": 16, "pad_token_id": 0,
            "bos_token_id": None, "eos_token_id": 1}
    torch.manual_seed(seed)
    model = SiglipModel(SiglipConfig(text_config=text, vision_config={**layers, "image_size": 32, "patch_size": 8}))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def write_png(path: Path, seed: int, size: tuple[int, int] = (40, 36)) -> Path:
    """A small random RGB PNG."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path
