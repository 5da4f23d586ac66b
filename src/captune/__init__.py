"""captune: fine-tune, evaluate and compare image-captioning models on your own photos.

The library is usable without the command line: ``captune.data`` reads and cleans caption
datasets, ``captune.models`` builds captioners, ``captune.train`` fine-tunes them,
``captune.metrics`` scores captions, ``captune.evaluate`` compares models and
``captune.report`` writes the report. ``captune --help`` lists the commands.
"""

__version__ = "0.1.0"
