import itertools

import pytest

from captune.errors import ConfigError
from captune.models.peft import FinetuneConfig, apply_finetuning, trainable_report
from captune.models.tiny import build_tiny_blip2


def names_trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("family,expected", [("opt", {"q_proj", "v_proj"}), ("t5", {"q", "v"})])
def test_query_value_targets_per_family(family, expected):
    model, _ = build_tiny_blip2(family)
    net = apply_finetuning(model, FinetuneConfig())
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names_trainable(net)}
    assert adapted == expected
    assert all("language_model" in n for n in names_trainable(net))


def test_parts_and_methods():
    model, _ = build_tiny_blip2("opt")
    net = apply_finetuning(model, FinetuneConfig(qformer="lora", vision="full", method="rslora"))
    report = trainable_report(net)
    assert set(report.by_part) == {"vision", "qformer", "lm"}
    assert net.peft_config["default"].use_rslora
    vision_params = sum(p.numel() for n, p in build_tiny_blip2("opt")[0].vision_model.named_parameters())
    assert report.by_part["vision"] == vision_params
    dora = apply_finetuning(build_tiny_blip2("opt")[0], FinetuneConfig(method="dora"))
    assert dora.peft_config["default"].use_dora


def test_full_finetuning_without_peft():
    model, _ = build_tiny_blip2("t5")
    net = apply_finetuning(model, FinetuneConfig(vision="full", qformer="full", lm="full"))
    assert not hasattr(net, "peft_config")
    report = trainable_report(net)
    assert report.trainable == report.total
    assert "trainable params: " in report.line() and "trainable%: 100.0000" in report.line()


def test_explicit_targets_and_errors():
    model, _ = build_tiny_blip2("opt")
    net = apply_finetuning(model, FinetuneConfig(targets=["fc1"]))
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names_trainable(net)} == {"fc1"}
    with pytest.raises(ConfigError, match="matches no linear layer"):
        apply_finetuning(build_tiny_blip2("opt")[0], FinetuneConfig(targets=["nope"]))
    with pytest.raises(ConfigError, match="nothing would train"):
        apply_finetuning(build_tiny_blip2("opt")[0], FinetuneConfig(lm="frozen"))


PARTS = ("vision", "qformer", "lm")
QUERY_VALUE = {"vision": {"qkv"}, "qformer": {"query", "value"}, "lm": {"q_proj", "v_proj"}}
PREFIXES = {"vision": ("vision_model.",), "qformer": ("qformer.", "language_projection."), "lm": ("language_model.",)}
MODES = [dict(zip(PARTS, combo)) for combo in itertools.product(("frozen", "lora", "full"), repeat=3)
         if set(combo) != {"frozen"}]


def expected_trainable(model, modes) -> set[str]:
    """Full parts: every parameter (query tokens with the Q-Former); LoRA parts: A and B of each
    targeted linear layer, and nothing else."""
    from torch import nn

    names = set()
    for part, mode in modes.items():
        if mode == "full":
            names |= {n for n, _ in model.named_parameters() if n.startswith(PREFIXES[part])}
        elif mode == "lora":
            names |= {f"{n}.lora_{ab}.default.weight" for n, m in model.named_modules() for ab in "AB"
                      if isinstance(m, nn.Linear) and n.startswith(PREFIXES[part])
                      and n.rsplit(".", 1)[-1] in QUERY_VALUE[part]}
    if modes["qformer"] == "full":
        names.add("query_tokens")
    return names


@pytest.mark.parametrize("modes", MODES, ids=lambda m: "-".join(f"{k}={v}" for k, v in m.items()))
def test_exactly_the_chosen_parameters_train(modes):
    """Every mix of frozen, LoRA and full parts: the trainable names are exactly the chosen ones,
    and a full part next to LoRA is trained in place (no second copy of it)."""
    plain, _ = build_tiny_blip2("opt")
    expected = expected_trainable(plain, modes)
    net = apply_finetuning(build_tiny_blip2("opt")[0], FinetuneConfig(**modes))
    trained = {n.removeprefix("base_model.model.") for n in names_trainable(net)}
    assert trained == expected
    n_lora = sum(p.numel() for n, p in net.named_parameters() if ".lora_" in n)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in plain.parameters()) + n_lora
