"""Error flags on hand-made captions, CLIP-checked hallucinations, extremes and the fixed sample."""


from captune.evaluate.errors import FLAGS, analyze_errors, caption_flags, extremes, sample_ids

REFS = [
    "a red circle above a blue square",
    "a red circle over a blue square",
    "red circle, blue square below it",
    "a small red circle and a square",
]
SPAN = (3, 12)


def test_a_good_caption_has_no_flags():
    assert caption_flags("a red circle above a blue square", REFS, SPAN) == {}


def test_omission_names_the_word_most_references_use():
    assert caption_flags("a red circle above something", REFS, SPAN)["omission"] == ["blue", "square"]
    assert caption_flags("a red circle above a square", REFS, SPAN)["omission"] == ["blue"]


def test_unsupported_words_are_content_words_in_no_reference_singular_forms_match():
    flags = caption_flags("two red circles above a blue square and a green star", REFS, SPAN)
    assert flags["unsupported"] == ["green", "star"]  # "two" is a stop word, "circles" matches "circle"


def test_repetition_of_words_and_phrases():
    assert caption_flags("a red red circle above a blue square", REFS, SPAN)["repetition"] == ["red red"]
    flags = caption_flags("a red circle a red circle a red circle", REFS, SPAN)
    assert "a red circle" in flags["repetition"]


def test_lengths_against_the_reference_range_and_leaks():
    assert caption_flags("circle", REFS, SPAN)["too_short"] == ["1 words"]
    long = " ".join(["a red circle above a blue square"] * 2)
    assert "too_long" in caption_flags(long, REFS, SPAN)
    flags = caption_flags("a red circle above a blue square @ana #fun www.club.com", REFS, SPAN)
    assert flags["handle"] == ["@ana"] and flags["hashtag"] == ["#fun"] and flags["url"] == ["www.club.com"]


def test_analysis_counts_each_flag_once_per_caption():
    caps = ["a red circle above a blue square", "a red red circle", "a green star #fun #club"]
    analysis = analyze_errors(caps, [REFS] * 3)
    assert analysis.counts["repetition"] == 1 and analysis.counts["hashtag"] == 1
    assert analysis.counts["omission"] == 2 and analysis.counts["unsupported"] == 1
    assert "hallucination" not in analysis.counts and list(analysis.counts) == [
        f for f in FLAGS if f != "hallucination"
    ]
    assert analysis.to_json()["clean"] == 1
    assert analysis.length_range == (6.0, 7.0)  # percentiles 5 and 95 of three times 7, 7, 6, 7 words


def test_hallucination_needs_clip_and_uses_image_similarity(monkeypatch):
    import numpy as np

    from captune.metrics import clipscore

    def fake_similarity(images, texts, model, **kw):
        # CLIP "sees" the shapes clearly, the other reference words less, and no star at all.
        return np.array(
            [[0.9 if ("circle" in t or "square" in t) else 0.1 if "star" in t else 0.5 for t in texts]]
        )

    monkeypatch.setattr(clipscore, "clip_similarity", fake_similarity)
    analysis = analyze_errors(
        ["a red circle and a star above a square"], [REFS], images=["x.png"], clip_model="m"
    )
    assert analysis.per_image[0]["unsupported"] == ["star"]
    assert analysis.per_image[0]["hallucination"] == ["star"]
    assert analysis.counts["hallucination"] == 1


def test_extremes_and_fixed_sample():
    assert extremes([0.5, None, 0.1, 0.9, 0.3], k=2) == {"worst": [2, 4], "best": [3, 0]}
    ids = [f"img{i}" for i in range(50)]
    sample = sample_ids(ids, 5, seed=1)
    assert len(sample) == 5 and sample == sample_ids(list(reversed(ids)), 5, seed=1)
    assert sample != sample_ids(ids, 5, seed=2)
    assert sample_ids(ids[:3], 5) == sorted(ids[:3])
