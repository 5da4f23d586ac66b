"""Fine-tuning: the training recipe (``loop``), checkpoints, the vision-feature cache, dry runs."""
