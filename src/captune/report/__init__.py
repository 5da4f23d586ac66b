"""The data-science report of a fine-tuning run and its evaluations (``captune report``).

``build_report(paths, out=None, ...)`` writes ``report.html`` (self-contained), ``report.md``
(figures in ``report_files/``) and, with ``model_card=True``, a Hugging Face model card in the
run's ``checkpoints/best/README.md``. ``captune.report.run`` reads run folders,
``captune.report.sections`` assembles the sections, ``captune.report.plots`` draws the figures.
"""

from captune.report.build import build_report

__all__ = ["build_report"]
