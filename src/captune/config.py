"""Typed configuration: YAML files and ``a.b.c=value`` overrides checked against pydantic schemas.

A schema is a ``Schema`` subclass whose fields carry a one-line docstring; those docstrings are
the documentation (``captune train --help-config`` prints them). Unknown keys, wrong types and
missing required fields stop with one message naming the file, the line, the key path and what
was expected. ``dump_config`` writes the resolved configuration next to every output.

    cfg = load_config(TrainConfig, "configs/finetune/tiny-lora.yaml", ["train.max_steps=20"])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from captune.errors import ConfigError
from captune.io import write_text

T = TypeVar("T", bound=BaseModel)


class Schema(BaseModel):
    """Base of every configuration section: unknown keys are errors, field docstrings are help."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=True)


def load_config(
    schema: type[T],
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> T:
    """Read ``path`` (YAML), apply ``overrides`` and validate against ``schema``."""
    data: dict[str, Any] = dict(defaults or {})
    lines: dict[tuple, int] = {}
    source = str(path) if path is not None else "<overrides>"
    if path is not None:
        loaded, lines = _read_yaml(Path(path))
        data = _merge(data, loaded)
    data = apply_overrides(data, overrides)
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, schema, source, lines, overrides)) from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` set (value parsed as YAML)."""
    out = _merge({}, data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, for example train.max_steps=20")
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            if not isinstance(child, dict):
                child = {}
                node[p] = child
            node = child
        node[parts[-1]] = _parse_value(raw)
    return out


def parse_grid(specs: Sequence[str], example: str, forbidden: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """``--grid KEY=V1,V2`` arguments -> ``{key: [values]}`` (the sweeps of ``captune sweep train`` and
    ``captune agent sweep``). Values split at commas outside brackets, braces and quotes, so
    ``categorize.labels=[a, b],[c]`` is two values. Errors name the ``--grid`` argument: no ``=``, an
    empty key or value, a key given twice, a value given twice, a key in ``forbidden`` (key -> why)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid {spec!r}: expected KEY=V1,V2,..., for example --grid {example}")
        if forbidden and key in forbidden:
            raise ConfigError(f"--grid {spec!r}: {key} cannot be a grid key ({forbidden[key]})")
        if key in grid:
            raise ConfigError(f"--grid {spec!r}: {key} is already swept; give all its values in one --grid")
        values = split_values(raw)
        if not raw.strip() or any(not v for v in values):
            raise ConfigError(f"--grid {spec!r}: an empty value; write the values between commas, e.g. {key}=a,b")
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ConfigError(f"--grid {spec!r}: {twice[0]!r} given twice")
        grid[key] = values
    return grid


def split_values(raw: str) -> list[str]:
    """Split at top-level commas (not inside ``[]``, ``{}`` or quotes); items are stripped."""
    items, depth, quote, current = [], 0, "", []
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    items.append("".join(current).strip())
    return items


def dump_config(cfg: BaseModel, path: str | os.PathLike) -> Path:
    """Write the resolved configuration as YAML (atomically)."""
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return write_text(path, text)


def describe_schema(schema: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """Flatten a schema into ``(key.path, type, help)`` rows, for ``--help-config`` listings."""
    rows = []
    for name, field in schema.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(describe_schema(ann, key + "."))
            continue
        default = "required" if field.is_required() else f"default {field.get_default(call_default_factory=True)!r}"
        rows.append((key, _type_name(ann), f"{field.description or ''} ({default})".strip()))
    return rows


def format_validation_error(
    err: ValidationError,
    schema: type[BaseModel],
    source: str,
    lines: Mapping[tuple, int] | None = None,
    overrides: Sequence[str] = (),
) -> str:
    msgs = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "<top level>"
        where = _where(source, loc, lines or {}, overrides)
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(schema, loc[:-1])
            hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
            msgs.append(f"{where}: {key}: unknown key{hint}")
        elif e["type"] == "missing":
            msgs.append(f"{where}: {key}: required field is missing")
        else:
            got = e.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
            msgs.append(f"{where}: {key}: {e['msg']}{shown}")
    return "invalid configuration\n  " + "\n  ".join(msgs)


def _where(source: str, loc: tuple, lines: Mapping[tuple, int], overrides: Sequence[str]) -> str:
    dotted = ".".join(str(p) for p in loc)
    for item in overrides:
        if item.partition("=")[0].strip() == dotted:
            return f"override {item!r}"
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return f"{source}:{lines[loc[:n]]}"
    return source


def _allowed_keys(schema: type[BaseModel], loc: tuple) -> list[str]:
    model: Any = schema
    for part in loc:
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return []
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
    return sorted(model.model_fields)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    if not path.exists():
        raise ConfigError(f"{path}: configuration file not found")
    text = path.read_text(encoding="utf-8-sig")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    lines: dict[tuple, int] = {}
    _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: yaml.Node, prefix: tuple, out: dict[tuple, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = prefix + (k.value,)
            out[key] = k.start_mark.line + 1
            _index_lines(v, key, out)


def _parse_value(raw: str) -> Any:
    """YAML scalars and flow collections (``[a, b]``, ``{k: v}``); other text stays a string."""
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw
    if isinstance(value, (dict, list)) and not raw.strip().startswith(("[", "{")):
        return raw  # e.g. a prompt such as "Caption: {event}" is text, not a mapping
    return value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif isinstance(v, Mapping):
            out[k] = _merge({}, v)
        else:
            out[k] = v
    return out


def _type_name(ann: Any) -> str:
    if get_origin(ann) is Literal:
        return "|".join(str(a) for a in get_args(ann))
    if get_origin(ann) in (Union, UnionType):
        return " | ".join(_type_name(a) for a in get_args(ann))
    if ann is type(None):
        return "null"
    return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
