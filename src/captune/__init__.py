"""captune: fine-tune, evaluate and compare image-captioning models on your own photos.

The library is usable without the command line: ``captune.data`` reads and cleans caption
datasets, ``captune.models`` builds captioners, ``captune.train`` fine-tunes them,
``captune.metrics`` scores captions, ``captune.evaluate`` compares models and
``captune.report`` writes the report. ``captune --help`` lists the commands.
"""

__version__ = "0.1.0"

MIN_TRANSFORMERS = (5, 18)
"""The oldest transformers captune works with (pyproject.toml declares the same floor)."""


def _installed_version(name: str) -> str | None:
    """The version of distribution ``name`` that ``import name`` would load: the first
    ``name-VERSION.dist-info`` folder on ``sys.path`` (a directory listing, where
    ``importlib.metadata`` costs tens of milliseconds at every start), else what
    ``importlib.metadata`` finds; None when it is not installed."""
    import os
    import sys

    prefix = name + "-"
    for folder in sys.path:
        try:
            entries = os.listdir(folder or ".")
        except OSError:
            continue
        for entry in entries:
            if entry.startswith(prefix) and entry.endswith(".dist-info"):
                return entry[len(prefix) : -len(".dist-info")]
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _check_transformers() -> None:
    """Refuse to import with a transformers older than MIN_TRANSFORMERS, naming the version found
    and the fix, instead of failing later on a missing class or argument."""
    import re

    found = _installed_version("transformers")
    if found is None:
        return  # its own import error names it
    match = re.match(r"(\d+)\.(\d+)", found)
    floor = ".".join(map(str, MIN_TRANSFORMERS))
    if match and tuple(map(int, match.groups())) < MIN_TRANSFORMERS:
        raise ImportError(
            f"captune needs transformers >= {floor}, but transformers {found} is installed: "
            f"pip install -U 'transformers>={floor}'"
        )


_check_transformers()
