import re

import numpy as np
import pytest

from captune.demo.captions import OPENERS, add_noise, house_captions, plain_captions
from captune.demo.scene import ATTRIBUTE_VOCAB, sample_scene

SCENES = [sample_scene(np.random.default_rng(2000 + i)) for i in range(150)]


def _stated(caption: str) -> dict[str, set[str]]:
    """Vocabulary words a caption states, per attribute."""
    return {key: {v for v in values if re.search(rf"\b{v}\b", caption, re.IGNORECASE)}
            for key, values in ATTRIBUTE_VOCAB.items()}


@pytest.mark.parametrize("style", ["plain", "house"])
def test_captions_name_every_object_and_state_only_true_attributes(style):
    for k, scene in enumerate(SCENES):
        rng = np.random.default_rng(k)
        if style == "plain":
            caps = plain_captions(scene, rng, 5)
        else:
            caps = house_captions(scene, "Sports Day", rng, 5)
        assert len(caps) == 5 and len(set(caps)) == 5
        truth = {key: set(values) for key, values in scene.attributes().items()}
        for caption in caps:
            for obj in scene.objects:
                assert f"{obj.colour} {obj.shape}" in caption
            for key, words in _stated(caption).items():
                assert words <= truth[key], (caption, key, words, truth[key])


def test_plain_captions_vary_detail_and_word_order():
    caps = [c for k, s in enumerate(SCENES) for c in plain_captions(s, np.random.default_rng(k), 5)]
    assert any(_stated(c)["size"] and _stated(c)["material"] for c in caps)
    assert any(not _stated(c)["size"] and not _stated(c)["material"] for c in caps)
    # the second object first: "a blue square with a red circle above it"
    assert any(" with " in c and c.endswith(" it") for c in caps)
    two = [s for s in SCENES if len(s.objects) == 2]
    stated_relation = [bool(_stated(c)["relation"]) for k, s in enumerate(two)
                       for c in plain_captions(s, np.random.default_rng(k), 5)]
    assert 0.5 < np.mean(stated_relation) < 0.9


def test_house_style_differs_from_plain():
    plain, house = [], []
    for k, scene in enumerate(SCENES):
        plain += plain_captions(scene, np.random.default_rng(k), 5)
        house += house_captions(scene, "Night Market", np.random.default_rng(k), 5)
    opens = lambda caps: np.mean([c.startswith(tuple(OPENERS)) for c in caps])
    assert opens(plain) == 0 and opens(house) > 0.7
    assert all("Night Market" in c for c in house) and not any("Night Market" in c for c in plain)
    assert not set(plain) & set(house)
    assert all(c[0].isupper() and c.endswith((".", "!")) for c in house)
    assert all(c[0].islower() and not c.endswith(".") for c in plain)
    assert {c.split(":")[0].rsplit(" ", 2)[0] for c in house if ":" in c} == set(OPENERS)


def test_clean_captions_have_no_social_decoration():
    for k, scene in enumerate(SCENES[:40]):
        for c in house_captions(scene, "Art Walk", np.random.default_rng(k), 5):
            assert not re.search(r"[@#]|http|Swipe|[^\x00-\x7f]", c), c


def test_add_noise_decorates_without_losing_the_caption():
    rng = np.random.default_rng(0)
    caption = "Moments from Art Walk: a red circle in the spotlight."
    noisy = [add_noise(caption, ["portrait", "night"], rng) for _ in range(200)]
    assert all(caption in n for n in noisy)
    for marker in ("@", "#Night", "Swipe →", "https://", "✨"):
        assert any(marker in n for n in noisy), marker


def test_house_style_is_what_house_references_reward(world):
    """A house caption scores far higher against the other house references than a true plain one."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    def words(text):
        return " ".join(re.findall(r"[a-z]+", text.lower()))

    refs = {r.image_id: [words(c) for c in r.captions[1:]] for r in world.house}
    scores = {}
    for style, records in (("house", world.house), ("plain", world.plain)):
        hyps = {r.image_id: [words(r.captions[0])] for r in records}
        bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
        scores[style] = (bleu[3], Cider().compute_score(refs, hyps)[0])
    assert scores["house"][0] > scores["plain"][0] + 0.2
    assert scores["house"][1] > 2 * scores["plain"][1]
