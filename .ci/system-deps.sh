#!/usr/bin/env bash
# Debian packages the live tests need (gst-rtsp-server as a test RTSP camera, headless Chromium for
# the preview page). Idempotent: installs only what is missing, runs `apt-get update` only when a
# package has no install candidate, and skips quietly when not root or without apt-get (the tests
# that need these packages then skip with a reason).
set -euo pipefail
PKGS=(
  gir1.2-gst-rtsp-server-1.0   # GstRtspServer typelib (RTSP server driven from /usr/bin/python3)
  gstreamer1.0-rtsp            # rtsp elements + libgstrtspserver
  gstreamer1.0-plugins-base    # videotestsrc, videoconvert
  gstreamer1.0-plugins-good    # rtph264pay
  gstreamer1.0-plugins-ugly    # x264enc
  python3-gi                   # GObject introspection for /usr/bin/python3
  chromium                     # headless browser for the preview page test
)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  exit 0
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
for p in "${missing[@]}"; do
  if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq
    break
  fi
done
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
