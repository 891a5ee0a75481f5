"""Which steps run, in which order, on which paths: one definition for dvc.yaml and the DAGs."""
