"""Captioning models: names and loading (``registry``, ``loading``), the BLIP-2 wrapper used in
training and generation (``blip2``), prompts, PEFT adapters, export, weight fingerprints and the
tiny offline models for tests (``tiny``).

This package imports nothing from the stages that use it (``train``, ``evaluate``, ``report``,
``cli``) nor from ``demo``: other packages add model names through ``captune.models.registry``.
Importing it loads no torch; the submodules that need torch import it themselves.
"""
