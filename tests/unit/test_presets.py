"""Every shipped preset loads against its schema and starts with the command that runs it."""

from pathlib import Path

import pytest

from captune.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def schema_for(path: Path):
    kind = path.relative_to(CONFIGS).parts[0]
    if kind == "finetune":
        from captune.train.config import TrainConfig

        return TrainConfig
    if kind == "data":
        from captune.data.clean import CleanConfig

        return CleanConfig
    if kind == "agent":
        from captune.agent.config import AgentConfig

        return AgentConfig
    raise AssertionError(f"no schema known for presets in configs/{kind}/")


PRESETS = sorted(CONFIGS.rglob("*.yaml"))


def test_there_are_presets():
    assert len(PRESETS) >= 7


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_preset_loads_and_names_its_command(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# captune ") and str(path.relative_to(CONFIGS.parent)) in first
    load_config(schema_for(path), path)
