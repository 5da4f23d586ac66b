"""BERTScore against a slow reference implementation and the bert_score package (a test extra)."""

from __future__ import annotations

import math
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tiny_encoders import build_tiny_bert, build_tiny_deberta, build_tiny_roberta, build_tiny_t5

from captune.metrics.base import MetricUnavailable
from captune.metrics.bertscore import bertscore, encode, resolve_layer
from captune.metrics.encoders import Encoder, load_encoder

CANDIDATES = [
    "a dog runs on the grass",
    "a red circle",
    "two yellow stars",
    "the cat sits on a chair by the window",
]
REFERENCES = [
    ["a dog runs with a red ball", "the dog on the grass"],
    ["a red circle on a white background"],
    ["two small yellow stars above a large black square", "stars", "yellow stars"],
    ["a cat is sitting on a wooden chair near the window"],
]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("bert"), layers=3)


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory):
    return build_tiny_roberta(tmp_path_factory.mktemp("roberta"))


def reference_bertscore(model_dir, candidates, references, layer, idf=False, prefix_space=False):
    """BERTScore by the paper, one sentence and one pair at a time (Zhang et al. 2020, eqs. 1-4)."""
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()

    def ids(s):
        return tok.encode((" " if prefix_space else "") + s, add_special_tokens=True)

    def embed(s):
        with torch.no_grad():
            h = model(torch.tensor([ids(s)]), output_hidden_states=True).hidden_states[layer][0]
        return (h / h.norm(dim=-1, keepdim=True)).numpy()

    flat = [r for refs in references for r in refs]
    df = {t: sum(t in set(ids(r)) for r in flat) for t in {t for s in candidates + flat for t in ids(s)}}

    def weights(s):
        if idf:
            return np.array([math.log((len(flat) + 1) / (df[t] + 1)) for t in ids(s)])
        return np.array([0.0 if t in (tok.cls_token_id, tok.sep_token_id) else 1.0 for t in ids(s)])

    out = []
    for cand, refs in zip(candidates, references):
        rows = []
        for ref in refs:
            sim = embed(cand) @ embed(ref).T
            p = (sim.max(1) * weights(cand)).sum() / weights(cand).sum()
            r = (sim.max(0) * weights(ref)).sum() / weights(ref).sum()
            rows.append((p, r, 2 * p * r / (p + r)))
        out.append(np.max(rows, axis=0))
    return np.array(out)


def _prf(result):
    return np.array([[x["bertscore_p"], x["bertscore_r"], x["bertscore_f1"]] for x in result.per_item])


@pytest.mark.parametrize("layer, idf", [(None, False), (1, False), (2, True)])
def test_bert_equals_reference(bert_dir, layer, idf):
    result = bertscore(
        CANDIDATES,
        REFERENCES,
        bertscore_model=str(bert_dir),
        bertscore_layer=layer,
        bertscore_idf=idf,
        batch_size=3,
    )
    expected = reference_bertscore(
        bert_dir, CANDIDATES, REFERENCES, layer=3 if layer is None else layer, idf=idf
    )
    np.testing.assert_allclose(_prf(result), expected, atol=1e-5)
    assert result.corpus["bertscore_f1"] == pytest.approx(expected[:, 2].mean(), abs=1e-5)
    assert f"_L{3 if layer is None else layer}_{'idf' if idf else 'no-idf'}" in result.info["bertscore"]


def test_roberta_encodes_with_a_leading_space(roberta_dir):
    result = bertscore(
        CANDIDATES, REFERENCES, bertscore_model=str(roberta_dir), bertscore_layer=2, batch_size=2
    )
    expected = reference_bertscore(roberta_dir, CANDIDATES, REFERENCES, layer=2, prefix_space=True)
    np.testing.assert_allclose(_prf(result), expected, atol=1e-5)


# bert_score cannot encode an empty sentence on transformers 5 (its tokenizers lack
# build_inputs_with_special_tokens), so the empty case is tested without it (below).
PARITY_CANDIDATES = CANDIDATES + ["an empty street at night with a red ball"]
PARITY_REFERENCES = REFERENCES + [["the street is empty", "bright lights at night"]]
# A baseline table in bert_score's format, one row per layer in order (bert_score picks the row by
# position, captune by the LAYER column).
BASELINE_ROWS = [(0, 0.1, 0.1, 0.1), (1, 0.3, 0.4, 0.5), (2, 0.2, 0.3, 0.4), (3, 0.35, 0.3, 0.25)]


def bert_score_package(model_dir, layer, idf, baseline=None, references=PARITY_REFERENCES, batch_size=3):
    """``(P, R, F)`` per candidate from the ``bert_score`` package itself."""
    import bert_score

    rescale = {}
    if baseline:
        rescale = {"rescale_with_baseline": True, "lang": "en", "baseline_path": str(baseline)}
    with warnings.catch_warnings():  # its baseline read hands torch a read-only pandas array
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        p, r, f = bert_score.score(
            PARITY_CANDIDATES,
            references,
            model_type=str(model_dir),
            num_layers=layer,
            idf=idf,
            batch_size=batch_size,
            nthreads=0,
            device="cpu",
            **rescale,
        )
    return torch.stack([p, r, f], 1).double().numpy()


@pytest.fixture
def roberta_prefix_space(monkeypatch):
    """Make ``bert_score`` encode RoBERTa with the leading space it asks for.

    ``bert_score.utils.sent_encode`` passes ``add_prefix_space=True`` to ``tokenizer.encode``;
    transformers 5 ignores it there, so without this its RoBERTa tokens start without the space
    (captune keeps the space, as ``bert_score`` gets on transformers 4). Loading the tokenizer with
    ``add_prefix_space=True`` restores what ``bert_score`` asked for; everything else is its own.
    """
    import bert_score.score  # noqa: F401  (the module patched below)
    from transformers import AutoTokenizer

    def get_tokenizer(model_type, use_fast=False):
        return AutoTokenizer.from_pretrained(model_type, use_fast=use_fast, add_prefix_space=True)

    monkeypatch.setattr(sys.modules["bert_score.score"], "get_tokenizer", get_tokenizer)
    return get_tokenizer


@pytest.fixture(scope="module")
def baseline_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("baseline") / "tiny.tsv"
    path.write_text("LAYER,P,R,F\n" + "".join(",".join(map(str, row)) + "\n" for row in BASELINE_ROWS))
    return path


@pytest.mark.parametrize("rescale", [False, True], ids=["raw", "rescaled"])
@pytest.mark.parametrize("idf", [False, True], ids=["no-idf", "idf"])
@pytest.mark.parametrize("layer", [1, 3])
def test_bert_matches_bert_score_package(bert_dir, baseline_file, layer, idf, rescale):
    expected = bert_score_package(bert_dir, layer, idf, baseline_file if rescale else None)
    result = bertscore(
        PARITY_CANDIDATES,
        PARITY_REFERENCES,
        bertscore_model=str(bert_dir),
        bertscore_layer=layer,
        bertscore_idf=idf,
        bertscore_baseline=str(baseline_file) if rescale else None,
    )
    _assert_parity(_prf(result), expected, BASELINE_ROWS[layer][1:] if rescale else (0, 0, 0))


@pytest.mark.parametrize("idf", [False, True], ids=["no-idf", "idf"])
def test_roberta_matches_bert_score_package(roberta_dir, roberta_prefix_space, baseline_file, idf):
    from bert_score.utils import sent_encode

    tok = roberta_prefix_space(str(roberta_dir))
    captune_tok = load_encoder(str(roberta_dir), "cpu").tokenizer
    for s in PARITY_CANDIDATES + [r for refs in PARITY_REFERENCES for r in refs]:
        assert sent_encode(tok, s) == encode(captune_tok, s), s
    expected = bert_score_package(roberta_dir, 2, idf, baseline_file)
    result = bertscore(
        PARITY_CANDIDATES,
        PARITY_REFERENCES,
        bertscore_model=str(roberta_dir),
        bertscore_layer=2,
        bertscore_idf=idf,
        bertscore_baseline=str(baseline_file),
    )
    _assert_parity(_prf(result), expected, BASELINE_ROWS[2][1:])


def test_deberta_encodes_without_a_leading_space_as_bert_score_does(tmp_path_factory, baseline_file):
    """DeBERTa (v1) tokenizes byte-level BPE like RoBERTa, but bert_score adds the leading space only
    for GPT-2 and RoBERTa tokenizers: microsoft/deberta-xlarge-mnli is encoded as is."""
    from bert_score.utils import get_tokenizer, sent_encode

    deberta_dir = build_tiny_deberta(tmp_path_factory.mktemp("deberta"))
    theirs, ours = get_tokenizer(str(deberta_dir)), load_encoder(str(deberta_dir), "cpu").tokenizer
    for s in PARITY_CANDIDATES + [r for refs in PARITY_REFERENCES for r in refs]:
        assert encode(ours, s) == sent_encode(theirs, s), s
    expected = bert_score_package(deberta_dir, 2, idf=True, baseline=baseline_file)
    result = bertscore(PARITY_CANDIDATES, PARITY_REFERENCES, bertscore_model=str(deberta_dir), bertscore_layer=2,
                       bertscore_idf=True, bertscore_baseline=str(baseline_file))
    _assert_parity(_prf(result), expected, BASELINE_ROWS[2][1:])


@pytest.mark.parametrize("layer", [0, 2, 3])
def test_t5_matches_bert_score_package(tmp_path_factory, layer):
    """bert_score runs T5's first ``layer`` encoder blocks and takes the encoder's output, which
    passes through its final norm (t5-base's default layer is 11 of 12); the last layer's hidden
    state already has it. One-word sentences are left out: T5 adds one special token, not two, and
    bert_score takes a sentence of two tokens for an empty one. bert_score runs one pair at a time:
    its zero-padded batches differ from captune where a best cosine is negative (module docstring),
    which a random T5's cosines often are."""
    t5_dir = build_tiny_t5(tmp_path_factory.mktemp("t5"))  # "t5" in the path: bert_score loads T5EncoderModel
    references = [[r for r in refs if " " in r] for refs in PARITY_REFERENCES]
    expected = bert_score_package(t5_dir, layer, idf=False, references=references, batch_size=1)
    result = bertscore(PARITY_CANDIDATES, references, bertscore_model=str(t5_dir), bertscore_layer=layer)
    _assert_parity(_prf(result), expected, (0, 0, 0))


def _assert_parity(ours, theirs, baseline):
    """Equal to 1e-6 before rescaling: bert_score works in float32 (measured differences up to
    3e-7), and rescaling by b multiplies a difference by 1 / (1 - b), so it is undone first."""
    unscale = 1 - np.asarray(baseline, dtype=float)
    np.testing.assert_allclose((ours - theirs) * unscale, 0, atol=1e-6)


def test_idf_option_accepts_text(bert_dir):
    as_text = bertscore(CANDIDATES, REFERENCES, bertscore_model=str(bert_dir), bertscore_idf="false")
    assert "_no-idf_" in as_text.info["bertscore"]
    assert (
        "_idf_"
        in bertscore(CANDIDATES, REFERENCES, bertscore_model=str(bert_dir), bertscore_idf="true").info[
            "bertscore"
        ]
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(bert_dir):
    options = {"bertscore_model": str(bert_dir), "bertscore_idf": True}
    cpu = _prf(bertscore(CANDIDATES, REFERENCES, device="cpu", **options))
    np.testing.assert_allclose(
        _prf(bertscore(CANDIDATES, REFERENCES, device="cuda", **options)), cpu, atol=1e-4
    )


def test_identical_sentences_score_one_and_empty_scores_zero(bert_dir):
    result = bertscore(["a red circle", ""], [["a red circle"], ["a dog"]], bertscore_model=str(bert_dir))
    np.testing.assert_allclose(_prf(result), [[1, 1, 1], [0, 0, 0]], atol=1e-5)


def test_candidate_without_references_is_left_out(bert_dir):
    result = bertscore(["a red circle", "a dog"], [["a red circle"], []], bertscore_model=str(bert_dir))
    assert result.per_item[1] == {}
    assert result.corpus["bertscore_f1"] == pytest.approx(1.0, abs=1e-5)


def test_baseline_rescaling(bert_dir, tmp_path):
    baseline = tmp_path / "tiny-bert.tsv"
    baseline.write_text("LAYER,P,R,F\n0,0.1,0.1,0.1\n1,0.5,0.6,0.7\n2,0.2,0.3,0.4\n3,0.3,0.3,0.3\n")
    raw = _prf(bertscore(CANDIDATES, REFERENCES, bertscore_model=str(bert_dir), bertscore_layer=1))
    result = bertscore(
        CANDIDATES,
        REFERENCES,
        bertscore_model=str(bert_dir),
        bertscore_layer=1,
        bertscore_baseline=str(baseline),
    )
    b = np.array([0.5, 0.6, 0.7])
    np.testing.assert_allclose(_prf(result), (raw - b) / (1 - b), atol=1e-6)
    assert "rescaled=tiny-bert.tsv" in result.info["bertscore"]
    with pytest.raises(MetricUnavailable, match="no row for layer 3"):
        baseline.write_text("LAYER,P,R,F\n0,0.1,0.1,0.1\n")
        bertscore(CANDIDATES, REFERENCES, bertscore_model=str(bert_dir), bertscore_baseline=str(baseline))
    with pytest.raises(MetricUnavailable, match="missing.tsv"):
        bertscore(
            CANDIDATES,
            REFERENCES,
            bertscore_model=str(bert_dir),
            bertscore_baseline=str(tmp_path / "missing.tsv"),
        )


def test_default_layer_table_and_range():
    def enc(name, n_layers):
        return Encoder(
            name, SimpleNamespace(config=SimpleNamespace(num_hidden_layers=n_layers)), None, None, "cpu"
        )

    assert resolve_layer(enc("roberta-large", 24), None) == 17
    assert resolve_layer(enc("/models/roberta-large", 24), None) == 17
    assert resolve_layer(enc("/models/deberta-xlarge-mnli", 48), None) == 40  # microsoft/deberta-xlarge-mnli
    assert resolve_layer(enc("FacebookAI/roberta-large", 24), None) == 17
    assert resolve_layer(enc("my-org/my-encoder", 6), None) == 6
    assert resolve_layer(enc("my-org/my-encoder", 6), "2") == 2
    with pytest.raises(MetricUnavailable, match="0..6"):
        resolve_layer(enc("my-org/my-encoder", 6), 7)


def test_unavailable_without_model(tmp_path):
    with pytest.raises(MetricUnavailable, match="--bertscore-model"):
        bertscore(CANDIDATES, REFERENCES)
    with pytest.raises(MetricUnavailable, match="not-downloaded"):
        bertscore(CANDIDATES, REFERENCES, bertscore_model=str(tmp_path / "not-downloaded"))
