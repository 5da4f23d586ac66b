"""Human review of captions: blind, per-rater randomised studies in a SQLite file, a small web
app to rate them, agreement and rankings.

    captune review create studies/tone --system base=runs/demo/run/eval/base \
        --system finetuned=runs/demo/run/eval/finetuned --raters alice,bob --pairwise
    captune review serve studies/tone
    captune review export studies/tone --out ratings.jsonl

``store`` (the study file), ``sources`` (reading the systems' captions), ``agreement``
(Krippendorff's alpha, Fleiss' kappa, percent agreement, Bradley-Terry), ``app`` (FastAPI),
``export`` (the JSONL the report reads).
"""

from captune.review.export import export_ratings
from captune.review.store import Study, create_study

__all__ = ["Study", "create_study", "export_ratings"]
