import pytest
from pydantic import Field

from captune.config import Schema, apply_overrides, describe_schema, dump_config, load_config
from captune.errors import ConfigError


class Optim(Schema):
    lr: float = 1e-4
    """Peak learning rate."""
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""


class Run(Schema):
    name: str
    """Run name (required)."""
    steps: int = 10
    """Optimizer steps."""
    optim: Optim = Field(default_factory=Optim)
    """Optimizer settings."""


def write(tmp_path, text):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return p


def test_loads_yaml_and_overrides(tmp_path):
    p = write(tmp_path, "# captune train run.yaml\nname: a\noptim:\n  lr: 0.001\n")
    cfg = load_config(Run, p, ["steps=20", "optim.betas=[0.8, 0.9]"])
    assert cfg.name == "a" and cfg.steps == 20
    assert cfg.optim.lr == pytest.approx(0.001)
    assert cfg.optim.betas == [0.8, 0.9]


def test_unknown_key_names_file_line_path_and_choices(tmp_path):
    p = write(tmp_path, "name: a\noptim:\n  lr: 0.1\n  lrr: 0.2\n")
    with pytest.raises(ConfigError) as e:
        load_config(Run, p)
    msg = str(e.value)
    assert f"{p}:4" in msg and "optim.lrr: unknown key" in msg and "betas, lr" in msg


def test_wrong_type_and_missing_field(tmp_path):
    p = write(tmp_path, "steps: many\n")
    with pytest.raises(ConfigError) as e:
        load_config(Run, p)
    msg = str(e.value)
    assert "steps:" in msg and "'many'" in msg and "integer" in msg
    assert "name: required field is missing" in msg


def test_bad_override_is_named(tmp_path):
    p = write(tmp_path, "name: a\n")
    with pytest.raises(ConfigError, match="override 'steps=x'"):
        load_config(Run, p, ["steps=x"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["steps"])


def test_invalid_yaml_names_line(tmp_path):
    p = write(tmp_path, "name: a\nsteps: [1,\n")
    with pytest.raises(ConfigError, match=r"run.yaml:\d+: not valid YAML"):
        load_config(Run, p)


def test_override_text_with_colon_stays_text():
    cfg = load_config(Run, None, ["name=Caption for {event}: go"])
    assert cfg.name == "Caption for {event}: go"


def test_dump_roundtrip(tmp_path):
    cfg = load_config(Run, None, ["name=x", "optim.lr=0.5"])
    out = dump_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Run, out) == cfg


def test_describe_schema_uses_docstrings():
    rows = {k: (t, h) for k, t, h in describe_schema(Run)}
    assert rows["optim.lr"][1].startswith("Peak learning rate.")
    assert "required" in rows["name"][1]
