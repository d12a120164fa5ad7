"""The faces: thin commands on top of the pipeline (enhance, demo, …)."""
