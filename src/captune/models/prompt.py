"""Prompt templates with ``{event}``, ``{labels}`` and ``{attributes}`` fields.

The same template is used at training and at generation time (it is saved in every checkpoint).
An empty template is allowed: the model then captions from the image alone.

    render_prompt("Write a short Instagram caption for a photography club post about '{event}'. "
                  "Focus on: {labels}.", record.meta)
"""

from __future__ import annotations

import string
from typing import Any

from captune.errors import ConfigError

FIELDS = ("event", "labels", "attributes")


def check_template(template: str) -> str:
    """Raise ``ConfigError`` when the template names a field other than event, labels, attributes."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as e:
        raise ConfigError(f"prompt template {template!r}: {e} (write literal braces as {{{{ and }}}})") from None
    unknown = names - set(FIELDS)
    if unknown:
        raise ConfigError(
            f"prompt template {template!r}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"available: {', '.join('{' + f + '}' for f in FIELDS)}"
        )
    return template


def render_prompt(template: str, meta: dict[str, Any] | None) -> str:
    """Fill the template from a record's metadata; missing fields become empty text."""
    if not template:
        return ""
    meta = meta or {}
    labels = meta.get("labels") or []
    attributes = meta.get("attributes") or {}
    values = {
        "event": str(meta.get("event") or ""),
        "labels": ", ".join(map(str, labels)) if isinstance(labels, list) else str(labels),
        "attributes": _attributes_text(attributes),
    }
    return " ".join(template.format(**values).split())


def _attributes_text(attributes: Any) -> str:
    if isinstance(attributes, dict):
        parts = []
        for value in attributes.values():
            parts.extend(value if isinstance(value, list) else [value])
        return ", ".join(dict.fromkeys(str(p) for p in parts))
    if isinstance(attributes, list):
        return ", ".join(map(str, attributes))
    return str(attributes)
