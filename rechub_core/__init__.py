"""rechub_core: recommender models, trainers, metrics, index and export.

A library: tensors and arrays in, tensors and arrays out. It never imports the
pipeline layers (components, pipelines, dags) nor airflow, dvc, duckdb or
great_expectations.
"""

__version__ = "0.1.0"
