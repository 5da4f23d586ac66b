"""Find Hugging Face weights: a local directory, then the Hugging Face cache, then the hub unless offline.

    from captune.hub import from_pretrained
    model = from_pretrained(AutoModel.from_pretrained, "roberta-large", what="AutoModel")

The captioners (``captune.models.loading``) and the metrics' encoders (``captune.metrics.encoders``)
both load through ``from_pretrained``, so they share one offline rule: ``HF_HUB_OFFLINE`` (or, when
it is unset, ``TRANSFORMERS_OFFLINE``) set to ``1``, ``true``, ``yes`` or ``on`` in any case, as
``huggingface_hub`` reads them. A failure raises ``ModelNotFoundError`` from the original error and
says which of three things happened: the model is not on this machine, the cached copy is
incomplete or corrupt, or the hub refused access (a gated or private repository).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from captune.errors import ModelNotFoundError

TRUE_VALUES = {"1", "ON", "YES", "TRUE"}
"""The values ``huggingface_hub`` takes as true (compared upper-cased, not stripped)."""


def offline() -> bool:
    """True when the hub must not be contacted: the environment now, or ``huggingface_hub`` at import."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return (value is not None and value.upper() in TRUE_VALUES) or bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> str:
    """Where ``from_pretrained`` looks for hub models on this machine."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick request, so an unreachable hub fails in seconds instead of after minutes of retries."""
    import httpx
    from huggingface_hub.constants import ENDPOINT

    try:
        httpx.head(ENDPOINT, timeout=timeout)
        return True
    except httpx.HTTPError:
        return False


def from_pretrained(load: Callable[..., Any], source: str, *, what: str = "model", **kwargs: Any) -> Any:
    """``load(source, **kwargs)`` from a local directory, else from the cache, else from the hub.

    ``load`` is a ``from_pretrained`` (of a model, tokenizer or processor class); ``what`` names it in
    errors. The hub is tried only when not ``offline()`` and reachable.
    """
    if Path(source).is_dir():
        try:
            return load(source, **kwargs)
        except (OSError, ValueError) as err:
            raise ModelNotFoundError(_unloadable_folder(source, what, err)) from err
    try:
        return load(source, local_files_only=True, **kwargs)
    except (OSError, ValueError) as err:
        if offline():
            raise ModelNotFoundError(_explain(source, what, err, "offline mode is on, so the hub was not tried")) from err
        if not hub_reachable():
            raise ModelNotFoundError(_explain(source, what, err, "the hub could not be reached")) from err
    try:
        return load(source, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(_explain(source, what, err, "downloading it failed")) from err


def _unloadable_folder(source: str, what: str, err: Exception) -> str:
    return (
        f"cannot load {what} from the local directory {source}: {_first_line(err)}. "
        "The directory must hold what save_pretrained writes (config.json, the weights, "
        "the tokenizer files and, for CLIP, preprocessor_config.json)."
    )


def _explain(source: str, what: str, err: Exception, tried: str) -> str:
    """The message for a hub id that did not load: refused access, a broken cache, or not here."""
    detail = _first_line(err)
    if _refused(err):
        return (
            f"model {source!r}: the hub refused access ({what}: {detail}). It is gated or private: accept its "
            f"terms on https://huggingface.co/{source} and log in (`hf auth login`, or set HF_TOKEN), "
            "or pass a local directory that holds the model."
        )
    cached = cached_snapshot(source)
    if cached is not None:
        return (
            f"model {source!r} is in the Hugging Face cache ({cached}) but {what} did not load from it: "
            f"{detail}. The cached copy is incomplete or corrupt: delete that folder and download it again "
            f"(`hf download {source}`), or pass a local directory that holds the model."
        )
    return (
        f"model {source!r} is not on this machine ({what}: {detail}). Looked in the Hugging Face cache "
        f"{hub_cache_dir()}; {tried}. Get it on a connected machine with `hf download {source}` (older "
        f"huggingface_hub: `huggingface-cli download {source}`) and copy the cache folder here (or set "
        "HF_HOME), or pass a local directory that holds the model."
    )


def cached_snapshot(repo_id: str) -> Path | None:
    """The Hugging Face cache folder ``from_pretrained(repo_id, local_files_only=True)`` would read."""
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a repo id
        return None
    return Path(config).parent if isinstance(config, str) else None


def _refused(err: BaseException) -> bool:
    """A gated or private repository, or a missing or invalid token, anywhere in the error's causes."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    for e in _causes(err):
        if isinstance(e, GatedRepoError):
            return True
        response = getattr(e, "response", None) if isinstance(e, HfHubHTTPError) else None
        if response is not None and getattr(response, "status_code", None) in (401, 403):
            return True
    return False


def _causes(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
