"""Models by family; see ``rechub_core.models.registry``."""
