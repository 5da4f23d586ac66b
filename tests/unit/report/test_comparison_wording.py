"""The report's sentences about a comparison say what its interval and p-value say."""

from captune.report.sections import bottom_line


def pair(low, high, p, significant):
    row = {
        "a": 0.5,
        "b": 0.6,
        "delta": 0.1,
        "rel_delta": 20.0,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
        "significant": significant,
        "better": "higher",
        "flags": [],
    }
    return {
        "a": {"name": "base", "model": {"source": "base model"}},
        "b": {"name": "tuned", "model": {"source": "fine-tuned checkpoint"}},
        "images": 20,
        "metrics": {"cider": row},
    }


def test_an_interval_that_includes_zero_is_said_to():
    line = bottom_line(pair(-0.02, 0.2, 0.2, False), [], None)
    assert line["verdict"] == "no clear difference" and "The interval includes 0" in line["headline"]


def test_an_interval_that_excludes_zero_with_a_large_p_is_not_said_to_include_zero():
    line = bottom_line(pair(0.01, 0.2, 0.08, False), [], None)
    assert line["verdict"] == "no clear difference"
    assert "includes 0" not in line["headline"]
    assert (
        "The interval excludes 0 but the permutation test's p is 0.080 (not below 0.05)" in line["headline"]
    )


def evaluation(name, repetition_share):
    return {
        "dir": f"runs/x/eval/{name}",
        "name": name,
        "errors": {"shares": {"repetition": repetition_share}},
    }


def test_the_model_card_counts_flag_changes_between_the_two_models_it_compares():
    from captune.report.model_card import strengths, tradeoffs

    base, best, other = evaluation("base", 0.40), evaluation("best", 0.10), evaluation("zz-last", 0.60)
    card_pair = {"a": {"dir": base["dir"]}, "b": {"dir": best["dir"]}, "metrics": {}}
    evals = [base, best, other]  # the report's order: base first, then by folder name
    assert strengths(card_pair, evals) == ["Fewer captions with repeated words or phrases: 40% → 10%."]
    assert tradeoffs(card_pair, evals) == []
