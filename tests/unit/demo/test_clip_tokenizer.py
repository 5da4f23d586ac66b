"""The shapes CLIP's tokenizer: learnt from captions, the same every time."""

from __future__ import annotations

from collections import Counter

from captune.demo.clip import build_clip_tokenizer, learn_bpe_merges

LINES = ["a small red circle above a blue square", "a large striped green star to the left of a red circle",
         "a photo of night", "a dotted purple hexagon below a white cross"] * 3


def test_the_same_lines_give_the_same_tokenizer():
    first = build_clip_tokenizer(LINES, 700).backend_tokenizer.to_str()
    for _ in range(3):
        assert build_clip_tokenizer(LINES, 700).backend_tokenizer.to_str() == first


def test_corpus_words_are_single_tokens_and_other_text_still_encodes():
    tok = build_clip_tokenizer(LINES, 700)
    assert tok.tokenize("A Red   Circle above") == ["a</w>", "red</w>", "circle</w>", "above</w>"]
    pieces = tok.tokenize("zebras!")
    assert len(pieces) > 1 and "".join(pieces).replace("</w>", "") == "zebras!"
    ids = tok("a red circle").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) == 5
    assert tok.decode(ids, skip_special_tokens=True).strip() == "a red circle"


def test_vocabulary_size_caps_the_merges():
    small, large = build_clip_tokenizer(LINES, 530), build_clip_tokenizer(LINES, 2000)
    assert len(small) == 530
    # with room to spare every word becomes one token and learning stops on its own
    assert len(large) < 2000 and all(len(large.tokenize(w)) == 1 for line in LINES for w in line.split())


def test_merges_take_the_most_frequent_pair_and_break_ties_by_sort_order():
    words = Counter({"ab": 3, "cd": 3, "ce": 1})
    assert learn_bpe_merges(words, 10, end_of_word="/") == [("a", "b/"), ("c", "d/"), ("c", "e/")]
    assert learn_bpe_merges(Counter({"aaa": 1}), 10) == [("a", "a"), ("aa", "a")]
