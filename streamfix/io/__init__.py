"""Media I/O through PyAV: readers, writers, frame ↔ plane views, images. Knows no model."""
