"""Print pip constraints that pin the model libraries to the minimum versions pyproject.toml declares.

    python3 .ci/floors.py > floors.txt && pip install -c floors.txt -e . pytest

Each ``NAME>=X`` among FLOORED becomes ``NAME==X``, so CI runs the model tests on the oldest
versions captune claims to support. torch is left out: the only torch build CI can install is
the README's torch==2.13.0 (older ones are multi-GB downloads), so its floor is the one
transformers' floor itself enforces, not one CI checks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FLOORED = (
    "transformers", "peft", "accelerate", "tokenizers", "safetensors",
    "pydantic", "numpy", "pillow", "pyyaml",
)


def dependencies(pyproject: Path) -> list[str]:
    """The ``[project] dependencies`` strings (read without tomllib, which Python 3.10 lacks)."""
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", pyproject.read_text(), re.S | re.M)
    if block is None:
        raise SystemExit(f"{pyproject}: no 'dependencies = [...]' list")
    return re.findall(r'"([^"]+)"', block.group(1))


def floors(pyproject: Path) -> list[str]:
    """``name==floor`` for every FLOORED dependency; fails when one has no ``>=`` floor."""
    found = {}
    for dep in dependencies(pyproject):
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", dep.strip())
        if m and m.group(1).lower() in FLOORED:
            found[m.group(1).lower()] = m.group(2)
    missing = [name for name in FLOORED if name not in found]
    if missing:
        raise SystemExit(f"{pyproject}: no 'NAME>=VERSION' dependency for {', '.join(missing)}")
    return [f"{name}=={found[name]}" for name in FLOORED]


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    print("\n".join(floors(root / "pyproject.toml")))
