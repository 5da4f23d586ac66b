"""BERTScore (Zhang et al. 2020, "BERTScore: Evaluating Text Generation with BERT", ICLR) on any
Hugging Face encoder and layer, matching the ``bert_score`` package (0.3.13).

    from captune.metrics.bertscore import bertscore
    result = bertscore(predictions, references, bertscore_model="roberta-large")  # layer 17

Each sentence is encoded with special tokens; the token embeddings of the chosen hidden layer
(``hidden_states[layer]``: 0 is the embedding layer; T5's encoder norm, ``final_layer_norm``, is
applied to it as to the model's output, since ``bert_score`` embeds with the model cut after that
layer) are unit-normalized and matched greedily:
P = weighted mean over candidate tokens of their best cosine with a reference token, R = weighted
mean over reference tokens of their best cosine with a candidate token, F = 2PR / (P + R).
As in ``bert_score``:

- the weight of [CLS]/[SEP] (<s>/</s>) is 0, every other token 1; with ``bertscore_idf`` the
  weight of token t is log((M + 1) / (df(t) + 1)) over the M reference sentences (a token no
  reference contains gets log(M + 1)), which is 0 for [CLS]/[SEP] since every sentence has them;
- special tokens still take part as match targets (only their own weight is 0);
- byte-level BPE tokenizers (RoBERTa, GPT-2) encode with a leading space, except DeBERTa's (v1:
  microsoft/deberta-*-mnli), which ``bert_score`` does not count as a GPT-2 or RoBERTa tokenizer;
- with several references, P, R and F are each the maximum over the references (so F is the best
  F, and P and R may come from other references);
- an empty candidate or reference (no weighted token) scores 0; a candidate without references
  gets no score (its per-item dict is empty and the corpus means leave it out);
- the default layer of well-known models is the one ``bert_score`` tuned on WMT16
  (``DEFAULT_LAYERS``, by hub id or by a directory of the model's name), else the last layer;
- baseline rescaling reads ``bert_score``'s CSV (``LAYER,P,R,F``, one row per layer) and maps
  x to (x - b) / (1 - b), after taking the maximum over references.

One deliberate difference: ``bert_score`` pads a batch with zero similarity, so a token whose best
real cosine is negative gets 0 when its partner is shorter than the longest in the batch; padding
is excluded here. The two agree whenever cosines are non-negative, the usual case for contextual
embeddings. It is reimplemented (not imported) because ``bert_score`` loads its own model by hub
name, cannot take a loaded or cached encoder, and depends on pandas.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from captune.errors import ModelNotFoundError
from captune.metrics.base import MetricResult, MetricUnavailable, register
from captune.metrics.encoders import Encoder, load_encoder, max_length

if TYPE_CHECKING:
    import torch

# From bert_score's model2layers (best layer on WMT16 to-English); the rest use the last layer.
DEFAULT_LAYERS = {
    "roberta-large": 17,
    "roberta-base": 10,
    "roberta-large-mnli": 19,
    "distilroberta-base": 5,
    "bert-base-uncased": 9,
    "bert-large-uncased": 18,
    "bert-base-multilingual-cased": 9,
    "distilbert-base-uncased": 5,
    "xlm-roberta-base": 9,
    "xlm-roberta-large": 17,
    "microsoft/deberta-base-mnli": 9,
    "microsoft/deberta-large-mnli": 18,
    "microsoft/deberta-xlarge-mnli": 40,
    "microsoft/deberta-v3-base": 9,
    "microsoft/deberta-v3-large": 12,
    "facebook/bart-large": 10,
    "t5-base": 11,
}


@register("bertscore", outputs=("bertscore_p", "bertscore_r", "bertscore_f1"))
def bertscore(
    predictions: list[str],
    references: list[list[str]],
    images: list[str | Path] | None = None,
    **options: Any,
) -> MetricResult:
    """BERTScore P/R/F1 (options: bertscore_model, bertscore_layer, bertscore_idf,
    bertscore_baseline, device, batch_size, resources)."""
    name = options.get("bertscore_model")
    if not name:
        raise MetricUnavailable(
            "no BERTScore model configured: pass --bertscore-model NAME_OR_PATH "
            "(roberta-large is the usual English model)"
        )
    try:
        enc = load_encoder(name, options.get("device"), resources=options.get("resources"))
    except ModelNotFoundError as err:
        raise MetricUnavailable(str(err)) from err
    layer = resolve_layer(enc, options.get("bertscore_layer"))
    idf = _flag(options.get("bertscore_idf"))
    prf = bert_prf(
        predictions, references, enc, layer=layer, idf=idf, batch_size=int(options.get("batch_size") or 64)
    )
    baseline_path = options.get("bertscore_baseline")
    if baseline_path:
        base = read_baseline(baseline_path, layer)
        prf = (prf - base) / (1 - base)
    names = ("bertscore_p", "bertscore_r", "bertscore_f1")
    scored = ~np.isnan(prf[:, 0])
    per_item = [dict(zip(names, map(float, row))) if ok else {} for row, ok in zip(prf, scored)]
    corpus = {n: float(prf[scored, j].mean()) for j, n in enumerate(names)} if scored.any() else {}
    return MetricResult(corpus, per_item, {"bertscore": config_string(enc, layer, idf, baseline_path)})


def bert_prf(
    candidates: Sequence[str],
    references: Sequence[Sequence[str]],
    encoder: Encoder,
    *,
    layer: int,
    idf: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """Unrescaled ``(P, R, F)`` per candidate, shape ``(len(candidates), 3)``; each column is the
    maximum over that candidate's references (NaN for a candidate without references)."""
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates for {len(references)} reference lists")
    tok = encoder.tokenizer
    flat_refs = [r for refs in references for r in refs]
    prefix_space = _byte_level(tok)
    ids = {s: encode(tok, s, prefix_space=prefix_space) for s in {*candidates, *flat_refs}}
    weight = idf_weights([ids[r] for r in flat_refs]) if idf else _plain_weights(tok)
    emb = _embed(ids, encoder, layer, batch_size)
    pairs = [(c, r) for c, refs in zip(candidates, references) for r in refs]
    scores = _greedy_match(pairs, emb, ids, weight, batch_size, encoder.device)  # (n_pairs, 3)
    out = np.full((len(candidates), 3), np.nan)
    start = 0
    for i, refs in enumerate(references):
        if refs:
            out[i] = scores[start : start + len(refs)].max(axis=0)
        start += len(refs)
    return out


def encode(tokenizer: Any, sentence: str, *, prefix_space: bool | None = None) -> list[int]:
    """Token ids with special tokens, as ``bert_score.utils.sent_encode`` builds them.

    ``prefix_space`` (default: whether the tokenizer is byte-level BPE, DeBERTa's excepted) encodes " " + sentence,
    bert_score's ``add_prefix_space=True``, which transformers 5 no longer applies when passed to
    ``encode``.
    """
    text = sentence.strip()
    if prefix_space is None:
        prefix_space = _byte_level(tokenizer)
    if text and prefix_space:
        text = " " + text
    return tokenizer.encode(text, add_special_tokens=True, truncation=True, max_length=max_length(tokenizer))


def idf_weights(reference_ids: list[list[int]]) -> _Weights:
    """Token id -> log((M + 1) / (df + 1)) over the M reference sentences (default log(M + 1))."""
    m = len(reference_ids)
    df = Counter(t for ids in reference_ids for t in set(ids))
    table = {t: math.log((m + 1) / (c + 1)) for t, c in df.items()}
    unseen = math.log(m + 1)
    return _Weights(table, unseen)


def resolve_layer(encoder: Encoder, layer: int | str | None) -> int:
    """The requested layer, else the tuned default for known models, else the last layer."""
    cfg = encoder.model.config
    n_layers = int(getattr(cfg, "num_hidden_layers", 0) or getattr(cfg, "num_layers", 0))
    if layer is None or layer == "":
        chosen = _default_layer(encoder.name, n_layers)
    else:
        chosen = int(layer)
    if not 0 <= chosen <= n_layers:
        raise MetricUnavailable(
            f"bertscore_layer {chosen} is out of range for {encoder.name}: it has layers 0..{n_layers}"
        )
    return chosen


def _default_layer(name: str, n_layers: int) -> int:
    """``DEFAULT_LAYERS`` by hub id, else by the last part of the name (a local copy of
    microsoft/deberta-xlarge-mnli in ``models/deberta-xlarge-mnli``); else the last layer."""
    if name in DEFAULT_LAYERS:
        return DEFAULT_LAYERS[name]
    by_last_part = {key.rsplit("/", 1)[-1]: layer for key, layer in DEFAULT_LAYERS.items()}
    return by_last_part.get(Path(name).name, n_layers)


def read_baseline(path: str | Path, layer: int) -> np.ndarray:
    """The ``(P, R, F)`` baseline of ``layer`` from a bert_score baseline CSV (``LAYER,P,R,F``)."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise MetricUnavailable(f"cannot read the BERTScore baseline {path}: {err.strerror or err}") from err
    if not rows or not {"LAYER", "P", "R", "F"} <= set(rows[0]):
        raise MetricUnavailable(f"BERTScore baseline {path} is not a LAYER,P,R,F table (bert_score's format)")
    for row in rows:
        if int(row["LAYER"]) == layer:
            return np.array([float(row["P"]), float(row["R"]), float(row["F"])])
    layers = ", ".join(r["LAYER"] for r in rows)
    raise MetricUnavailable(f"BERTScore baseline {path} has no row for layer {layer} (layers: {layers})")


def config_string(encoder: Encoder, layer: int, idf: bool, baseline: str | Path | None) -> str:
    """What produced the numbers, in the spirit of bert_score's hash."""
    import transformers

    from captune import __version__

    text = f"{encoder.name}_L{layer}_{'idf' if idf else 'no-idf'}_captune={__version__}"
    text += f"_transformers={transformers.__version__}"
    return text + (f"_rescaled={Path(baseline).name}" if baseline else "")


def _flag(value: Any) -> bool:
    """A boolean option that may arrive as text from a command line or an override."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


class _Weights(dict):
    """Token weights with a default for unseen ids (bert_score uses a defaultdict)."""

    def __init__(self, table: dict[int, float], default: float) -> None:
        super().__init__(table)
        self.default = default

    def __missing__(self, key: int) -> float:
        return self.default


def _plain_weights(tokenizer: Any) -> _Weights:
    zero = {t: 0.0 for t in (tokenizer.cls_token_id, tokenizer.sep_token_id) if t is not None}
    return _Weights(zero, 1.0)


def _byte_level(tokenizer: Any) -> bool:
    """Whether ``bert_score`` encodes with a leading space: byte-level BPE, but not DeBERTa's."""
    if type(tokenizer).__name__.startswith("Deberta"):
        return False
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return type(tokenizer).__name__.startswith(("GPT2", "Roberta"))
    pre = json.loads(backend.to_str()).get("pre_tokenizer") or {}
    return '"ByteLevel"' in json.dumps(pre)


def _embed(
    ids: dict[str, list[int]], encoder: Encoder, layer: int, batch_size: int
) -> dict[str, torch.Tensor]:
    """Unit token embeddings of layer ``layer`` (``_as_output``) per sentence, shape ``(n_tokens, dim)``."""
    import torch

    model = encoder.model.get_encoder() if encoder.model.config.is_encoder_decoder else encoder.model
    pad = encoder.tokenizer.pad_token_id or 0
    order = sorted(ids, key=lambda s: -len(ids[s]))  # similar lengths share a batch
    out = {}
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        input_ids, mask = _pad([ids[s] for s in batch], pad)
        with torch.inference_mode():
            hidden = model(
                input_ids=input_ids.to(encoder.device),
                attention_mask=mask.to(encoder.device),
                output_hidden_states=True,
            ).hidden_states
            hidden = _as_output(model, hidden[layer], last=layer == len(hidden) - 1)  # (batch, max_len, dim)
        # Kept on the CPU (as bert_score does): a corpus of sentences can outgrow GPU memory.
        hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()
        for row, s in enumerate(batch):
            out[s] = hidden[row, : len(ids[s])]
    return out


def _as_output(model: Any, hidden: torch.Tensor, *, last: bool) -> torch.Tensor:
    """An intermediate layer's hidden state as the output of the model cut after that layer, which
    is what ``bert_score`` embeds with: T5's encoder ends in a norm (``final_layer_norm``) that
    transformers applies to the last hidden state only (t5-base's default layer is 11 of 12)."""
    norm = getattr(model, "final_layer_norm", None)
    return hidden if last or norm is None else norm(hidden)


def _greedy_match(
    pairs: list[tuple[str, str]],
    emb: dict[str, torch.Tensor],
    ids: dict[str, list[int]],
    weight: _Weights,
    batch_size: int,
    device: str,
) -> np.ndarray:
    """``(P, R, F)`` per (candidate, reference) pair, computed on padded batches of pairs."""
    import torch

    out = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        c_emb, c_w, c_mask = _stack_side([c for c, _ in chunk], emb, ids, weight, device)  # (B, Lc, d)
        r_emb, r_w, r_mask = _stack_side([r for _, r in chunk], emb, ids, weight, device)  # (B, Lr, d)
        sim = torch.bmm(c_emb, r_emb.transpose(1, 2))  # (B, Lc, Lr)
        # Padding must never win a max: push it below any cosine.
        sim = sim.masked_fill(~(c_mask.unsqueeze(2) & r_mask.unsqueeze(1)), -2.0)
        p = _weighted_mean(sim.max(dim=2).values, c_w)
        r = _weighted_mean(sim.max(dim=1).values, r_w)
        empty = (c_w.sum(1) == 0) | (r_w.sum(1) == 0)
        p, r = p.masked_fill(empty, 0.0), r.masked_fill(empty, 0.0)
        f = torch.nan_to_num(2 * p * r / (p + r), nan=0.0)
        out.append(torch.stack([p, r, f], dim=1).cpu().double())
    return torch.cat(out).numpy() if out else np.zeros((0, 3))


def _stack_side(
    sentences: list[str],
    emb: dict[str, torch.Tensor],
    ids: dict[str, list[int]],
    weight: _Weights,
    device: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded embeddings ``(B, L, d)``, token weights ``(B, L)`` and the real-token mask ``(B, L)``."""
    import torch

    pad = torch.nn.utils.rnn.pad_sequence
    vectors = pad([emb[s] for s in sentences], batch_first=True)
    weights = pad(
        [torch.tensor([weight[t] for t in ids[s]], dtype=torch.float32) for s in sentences], batch_first=True
    )
    lengths = torch.tensor([len(ids[s]) for s in sentences])
    mask = torch.arange(vectors.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return vectors.to(device), weights.to(device), mask.to(device)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    total = weights.sum(dim=1)
    return (values * weights).sum(dim=1) / total.clamp_min(1e-12)


def _pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    ids = torch.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask
