#!/usr/bin/env bash
# GPU check: decode-only, enhance-only (frames already on the device) and end-to-end fps at 1080p and 4K,
# per engine and backend, with NVML figures (GPU util, NVDEC util, power, memory). Run on a machine with an
# NVIDIA GPU, from the checkout, in the environment streamfix is installed in:
#
#     tools/gpu_check.sh [OUT_DIR]                 # default OUT_DIR: gpu_check_out
#
# Knobs (environment): SIZES="1080p 4k"  ENGINES="identity sci backlitnet"  BACKENDS (default: cuda, plus
# tensorrt when torch_tensorrt imports; add cpu for a reference)  FRAMES=300  CODEC=h264_nvenc (falls back to
# libx264 with an info line where the GPU has no NVENC: H100/H200/A100)  PYTEST=1 (also run tests/test_cuda.py).
# Engines without weights are reported as skipped. The table is written to OUT_DIR/table.md; paste it into
# docs/PERFORMANCE.md with the machine's description (the first lines of OUT_DIR/machine.txt).
set -euo pipefail

OUT=${1:-gpu_check_out}
SIZES=${SIZES:-"1080p 4k"}
ENGINES=${ENGINES:-"identity sci backlitnet"}
FRAMES=${FRAMES:-300}
CODEC=${CODEC:-h264_nvenc}
PY=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: PyTorch sees no CUDA device; nothing to measure" >&2
    exit 1
fi
if [ -z "${BACKENDS:-}" ]; then
    BACKENDS="cuda"
    if $PY -c "import torch_tensorrt" >/dev/null 2>&1; then
        BACKENDS="cuda tensorrt"
    else
        echo "gpu_check: torch_tensorrt does not import: measuring the cuda backend only" >&2
    fi
fi

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    $PY - <<'EOF'
import av, torch
from streamfix.gpu.probe import Probe, cuda_facts, nvenc_available
p = Probe()
print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| PyAV", av.__version__)
print("device", cuda_facts())
print("torch-tensorrt:", p.tensorrt_problem() or p.tensorrt_version())
print("NVENC h264:", nvenc_available("h264_nvenc"), "| hevc:", nvenc_available("hevc_nvenc"))
EOF
} | tee "$OUT/machine.txt"

for size in $SIZES; do
    clip=$($PY "$HERE/gpu_timing.py" clip --size "$size" --frames "$FRAMES" --out "$OUT/media" | tail -n 1)
    echo "== $size: $clip"
    $PY "$HERE/gpu_timing.py" decode --input "$clip" --hwaccel cuda --json "$OUT/decode-$size-nvdec.json"
    $PY "$HERE/gpu_timing.py" decode --input "$clip" --hwaccel none --json "$OUT/decode-$size-cpu.json"
    for engine in $ENGINES; do
        for backend in $BACKENDS; do
            tag="$size-$engine-$backend"
            $PY "$HERE/gpu_timing.py" enhance --input "$clip" --engine "$engine" --backend "$backend" \
                --frames "$FRAMES" --json "$OUT/enhance-$tag.json"
            if [ "$engine" != identity ] || [ "$backend" = cuda ]; then
                streamfix bench -i "$clip" --engine "$engine" --backend "$backend" --frames "$FRAMES" \
                    --rounds 1 --no-peers --codec "$CODEC" --json "$OUT/e2e-$tag.json" \
                    > "$OUT/e2e-$tag.txt" 2>&1 || echo "gpu_check: end-to-end $tag failed (see $OUT/e2e-$tag.txt)" >&2
            fi
        done
    done
done

$PY "$HERE/gpu_timing.py" table "$OUT"/decode-*.json "$OUT"/enhance-*.json $(ls "$OUT"/e2e-*.json 2>/dev/null) \
    | tee "$OUT/table.md"

if [ "${PYTEST:-0}" = 1 ]; then
    $PY -m pytest -q tests/test_cuda.py -rs | tee "$OUT/test_cuda.txt"
fi
echo "gpu_check: table in $OUT/table.md"
