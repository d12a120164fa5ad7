"""``streamfix live``: a live feed enhanced as it arrives, previewed and optionally re-published.

    source thread ──newest-frame slot──► enhance (calling thread) ──► preview (MJPEG / window)
     RTSP, webcam,   (late frames are       enhance_frame()       └──► sink (--out file / RTSP)
     paced file      dropped and counted)

Modules: :mod:`.sources` (open, decode, pace, reconnect), :mod:`.stats` (fps, latency
percentiles, drops), :mod:`.render` (before/after views as JPEG), :mod:`.preview` (the HTTP
server), :mod:`.window` (the opt-in OpenCV window, in a child process), :mod:`.sinks`
(recording and publishing), :mod:`.session` (the loop joining them), :mod:`.config` (the
``[live]`` preset section).

This package's ``__init__`` imports nothing: :mod:`.window_child` must start without PyAV.
"""
