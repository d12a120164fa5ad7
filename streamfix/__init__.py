"""streamfix: real-time enhancement of backlit and low-light video.

decode → thumbnail → engine (bilateral grid) → temporal → full-res slice → encode.
"""

__version__ = "0.1.0"
