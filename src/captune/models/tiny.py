"""Tiny captioners built offline from configs, for tests and machines without weights.

``tiny-blip2-opt`` and ``tiny-blip2-t5`` have the real BLIP-2 structure (ViT, Q-Former, OPT or
T5 language model), ``tiny-llava`` LLaVA-1.5's (CLIP ViT, two-layer projector, Llama with
``<image>`` tokens expanded by the processor) and ``tiny-blip`` BLIP's (ViT, BERT text decoder
cross-attending to it), each at a few hundred thousand parameters or fewer. They are
deterministic: the tokenizer is a byte-level BPE trained on a fixed corpus shipped here, and the
weights come from a fixed seed, so an adapter trained on one loads onto a freshly built one.

    model, processor = build_tiny_blip2("opt")
    model, processor = build_tiny_llava()
    model, processor = build_tiny_blip()
"""

from __future__ import annotations

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipProcessor,
    BlipTextConfig,
    BlipVisionConfig,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    OPTConfig,
    PreTrainedTokenizerFast,
    T5Config,
)

# A fixed corpus: the vocabulary of captions (objects, colours, materials, places, club posts).
# Byte-level BPE covers any text; this corpus only decides which merges exist.
_CORPUS = """\
a red circle above a blue square. a small green triangle left of a large yellow star.
a purple hexagon below an orange diamond. a white cross right of a black circle.
a striped circle, a dotted square, a checkered star and a solid triangle on a plain background.
two objects: a large blue star and a small red hexagon. three shapes in a row.
moments from the spring fair: a red circle steals the show above a blue square.
highlights from night market, snapshots of sports day, scenes from the orientation.
a man riding a bike down the street. a woman holding an umbrella in the rain.
a group of people standing on a stage in front of an audience at night.
a dog running on the grass in the park. a child in a pink dress climbing the stairs.
a plate of food on a wooden table. a cat sitting on a couch next to a window.
a photo of a leather shoe with white color and rubber material. a pair of canvas boots.
a portrait of a speaker at the award ceremony, lights, crowd, dance, music, team, smiles.
the photography club captured the cultural festival, with friends, colours and joy.
"""
_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
VOCAB_SIZE = 512
SHAPES = ("opt", "t5", "llama", "bert")


def build_tiny_tokenizer(family: str, corpus: str = _CORPUS, vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """A deterministic byte-level BPE tokenizer shaped like OPT's (``</s>`` first), T5's (``</s>``
    last), Llama's (``<s>`` first) or BLIP's BERT (``[CLS] ... [SEP]``, ``[DEC]`` starts a caption)."""
    if family not in SHAPES:
        raise ValueError(f"unknown family {family!r}: expected one of {', '.join(SHAPES)}")
    specials = _BERT_SPECIALS if family == "bert" else _SPECIALS
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus.splitlines(), trainer)
    template, kwargs = _shape(family)
    tok.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(t, tok.token_to_id(t)) for t in specials if t in template.split()])
    if family == "bert":
        return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", **kwargs)


def _shape(family: str) -> tuple[str, dict[str, str]]:
    """The post-processing template and special-token names of each tokenizer shape."""
    if family == "opt":  # OPT prepends </s> as its beginning-of-sequence token
        return "</s> $A", {"bos_token": "</s>", "eos_token": "</s>"}
    if family == "t5":  # T5 appends </s>; the decoder starts from <pad>
        return "$A </s>", {"eos_token": "</s>"}
    if family == "llama":  # Llama prepends <s> and ends an answer with </s>
        return "<s> $A", {"bos_token": "<s>", "eos_token": "</s>"}
    return "[CLS] $A [SEP]", {"bos_token": "[DEC]", "sep_token": "[SEP]", "cls_token": "[CLS]", "pad_token": "[PAD]",
                              "unk_token": "[UNK]", "mask_token": "[MASK]"}


def tiny_image_processor(image_size: int = 32):
    from transformers import BlipImageProcessorPil  # the PIL backend needs no torchvision

    return BlipImageProcessorPil(size={"height": image_size, "width": image_size})


def tiny_blip2_config(
    family: str,
    vocab_size: int,
    image_token_id: int,
    eos_token_id: int,
    pad_token_id: int,
    bos_token_id: int | None = None,
    *,
    image_size: int = 32,
    patch_size: int = 8,
    hidden: int = 32,
    layers: int = 2,
    num_query_tokens: int = 4,
) -> Blip2Config:
    vision = Blip2VisionConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, image_size=image_size, patch_size=patch_size,
    )
    qformer = Blip2QFormerConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, encoder_hidden_size=hidden, cross_attention_frequency=1,
    )
    if family == "opt":
        text = OPTConfig(
            vocab_size=vocab_size, hidden_size=hidden, ffn_dim=2 * hidden, num_hidden_layers=layers,
            num_attention_heads=2, word_embed_proj_dim=hidden, max_position_embeddings=256,
            bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
        )
    else:
        text = T5Config(
            vocab_size=vocab_size, d_model=hidden, d_kv=hidden // 2, d_ff=2 * hidden, num_layers=layers,
            num_decoder_layers=layers, num_heads=2, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
            decoder_start_token_id=pad_token_id, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
        )
    return Blip2Config(
        vision_config=vision.to_dict(), qformer_config=qformer.to_dict(), text_config=text.to_dict(),
        num_query_tokens=num_query_tokens, image_token_index=image_token_id,
    )


def build_tiny_blip2(
    family: str, seed: int = 0, image_size: int = 32, **config_overrides
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    """Build ``(model, processor)`` for ``family`` in {"opt", "t5"}; same arguments give the same weights."""
    tokenizer = build_tiny_tokenizer(family)
    num_query_tokens = config_overrides.get("num_query_tokens", 4)
    processor = Blip2Processor(tiny_image_processor(image_size), tokenizer, num_query_tokens=num_query_tokens)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    # Salesforce OPT checkpoints end captions with "\n" (byte-level "Ċ"); mirror that for OPT.
    eos = tokenizer.convert_tokens_to_ids("Ċ") if family == "opt" else tokenizer.eos_token_id
    config = tiny_blip2_config(
        family, len(tokenizer), image_token_id, eos, tokenizer.pad_token_id, tokenizer.bos_token_id,
        image_size=image_size, **config_overrides,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Blip2ForConditionalGeneration(config)
    model.eval()
    return model, processor


def build_tiny_llava(
    seed: int = 0, image_size: int = 32, patch_size: int = 8, hidden: int = 32, layers: int = 2
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """``(model, processor)`` shaped like LLaVA-1.5: CLIP ViT (penultimate layer, CLS dropped), a
    two-layer GELU projector and a Llama language model; the processor expands ``<image>`` into one
    token per patch, as llava-hf's does. Same arguments give the same weights."""
    from transformers import CLIPImageProcessorPil  # the PIL backend needs no torchvision

    tokenizer = build_tiny_tokenizer("llama")
    tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                            crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor, tokenizer, patch_size=patch_size,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1)
    vision = CLIPVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                              num_attention_heads=2, image_size=image_size, patch_size=patch_size, projection_dim=hidden)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                       max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                         image_token_id=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
                         vision_feature_select_strategy="default", projector_hidden_act="gelu")
    return _seeded(LlavaForConditionalGeneration, config, seed), processor


def build_tiny_blip(
    seed: int = 0, image_size: int = 32, patch_size: int = 8, hidden: int = 32, layers: int = 2
) -> tuple[BlipForConditionalGeneration, BlipProcessor]:
    """``(model, processor)`` shaped like BLIP's captioner: a ViT and a BERT text decoder that
    cross-attends to it, starting captions with ``[DEC]`` and ending them with ``[SEP]``."""
    tokenizer = build_tiny_tokenizer("bert")
    processor = BlipProcessor(tiny_image_processor(image_size), tokenizer)
    # BlipVisionConfig's default initializer_range (1e-10) would make every image look the same.
    vision = BlipVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                              num_attention_heads=2, image_size=image_size, patch_size=patch_size,
                              projection_dim=hidden, initializer_range=0.02)
    text = BlipTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, encoder_hidden_size=hidden,
                          intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=2,
                          projection_dim=hidden, max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.sep_token_id, sep_token_id=tokenizer.sep_token_id,
                          pad_token_id=tokenizer.pad_token_id)
    config = BlipConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), projection_dim=hidden)
    return _seeded(BlipForConditionalGeneration, config, seed), processor


def _seeded(model_class, config, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    return model.eval()
