"""Pipeline steps over rechub_core: each module has ``run(params, *, paths...)``.

Components are the only place that reads and writes artefacts.
"""
