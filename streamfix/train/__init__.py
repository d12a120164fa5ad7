"""Training and per-video fine-tuning of streamfix's learned engines."""
