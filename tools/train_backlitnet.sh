#!/usr/bin/env bash
# The shipped BacklitNet weights from the data alone, in one go, timed: the two synthetic sets, then the
# five trainings of engines/backlitnet.toml ([training] command) — a 3000-iteration training from scratch and
# four 500-iteration fine-tunes, each starting from the one before. Run from the checkout, in the environment
# streamfix is installed in:
#
#     tools/train_backlitnet.sh [OUT.safetensors] [WORK_DIR]   # defaults: backlitnet_trained.safetensors, backlitnet_work
#
# Needs ../shared/data (fivek_dpe_expertc_deeplpf, lol_v1_train_pairs_subset, kodak24_500px_clean) and the photos of
# three Debian packages: apt-get install mate-backgrounds lomiri-wallpapers ukui-wallpapers.
# Knobs (environment): DATA=../shared/data  THREADS=1 (torch threads; the batches are cut on a second core
# either way)  SEED=0. WORK_DIR keeps the synthetic sets, each step's weights (step1 … step5.safetensors) and
# logs. On one host a seed is bit-exact: with the defaults, on the host that trained them, this writes the
# tensors engines/backlitnet.safetensors holds (compared at the end); another CPU's kernels round differently and
# the runs part.
set -euo pipefail

OUT=${1:-backlitnet_trained.safetensors}
WORK=${2:-backlitnet_work}
DATA=${DATA:-../shared/data}
THREADS=${THREADS:-1}
SEED=${SEED:-0}
BG=/usr/share/backgrounds
SHIPPED=$(cd "$(dirname "$0")/.." && pwd)/engines/backlitnet.safetensors
case "$OUT" in *.safetensors) ;; *) echo "train_backlitnet: OUT must end in .safetensors, got $OUT" >&2; exit 2 ;; esac
for d in "$DATA/fivek_dpe_expertc_deeplpf" "$DATA/lol_v1_train_pairs_subset" "$DATA/kodak24_500px_clean" "$BG/mate/nature"; do
    [ -d "$d" ] || { echo "train_backlitnet: $d: no such folder (see the header of $0)" >&2; exit 1; }
done
mkdir -p "$WORK"
export OMP_WAIT_POLICY=PASSIVE

# the clean photos: Kodak's, MATE's nature set, and 12 photographs of the Lomiri and UKUI wallpaper packages
PHOTOS=(--images "$DATA/kodak24_500px_clean" --images "$BG/mate/nature")
for p in Kleiber_by_Lukas_Baubkus Bridge_by_Sander_Klootwijk Dragonfly_by_Bolly Picture_0B_by_freespace \
         Picture_1A_by_freespace Wine_by_Jakkub_Mede aitzgorri_by_Aitzol_Berasategi friends_by_Aitzol_Berasategi \
         life_by_Aitzol_Berasategi picosdeeuropa_by_Aitzol_Berasategi seeding_by_Clements_Engelhardt \
         sunset_by_Aitzol_Berasategi; do
    PHOTOS+=(--images "$BG/$p.jpg")
done

now() { date +%s.%N; }
minutes() { python -c "import sys; print(f'{(float(sys.argv[2]) - float(sys.argv[1])) / 60:.1f}')" "$1" "$2"; }

t_data=$(now)
rm -rf "$WORK/synth_flat" "$WORK/flat_only"
streamfix train synth-pairs "${PHOTOS[@]}" --per-image 12 --out "$WORK/synth_flat" \
    --kinds backlit,lowlight,mild,backlit,lowlight,identity,backlit,overexposed,mild,flat,flat,flat
streamfix train synth-pairs "${PHOTOS[@]}" --kinds flat --per-image 3 --black-white 0 --seed 1 --out "$WORK/flat_only"
t_train=$(now)
echo "train_backlitnet: synthetic sets in $(minutes "$t_data" "$t_train") min" >&2

COMMON=(--pairs "$DATA/fivek_dpe_expertc_deeplpf" --pairs "$DATA/lol_v1_train_pairs_subset"
        --synthetic "$WORK/synth_flat" --synthetic "$WORK/flat_only" --identity-share 0.1 --real-share 0.6
        --crush 2 --tv 0.1 --lights 0.5 --log-every 100 --threads "$THREADS" --seed "$SEED")
step() {  # step N FLAGS…: one training, its log in WORK/stepN.log
    local n=$1; shift
    local t=$(now)
    streamfix train backlitnet "${COMMON[@]}" "$@" --out "$WORK/step$n.safetensors" 2>&1 | tee "$WORK/step$n.log" >&2
    echo "train_backlitnet: step $n in $(minutes "$t" "$(now)") min, $(minutes "$t_train" "$(now)") min of training so far" >&2
}
step 1 --consistency 10 --toe 0.1 --iterations 3000
prev=1
for c in 40 80 160 160; do
    n=$((prev + 1))
    step $n --consistency $c --toe 0.3 --iterations 500 --lr 3e-4 --init "$WORK/step$prev.safetensors"
    prev=$n
done
cp "$WORK/step5.safetensors" "$OUT.partial" && mv "$OUT.partial" "$OUT"
echo "train_backlitnet: wrote $OUT; training $(minutes "$t_train" "$(now)") min (the synthetic sets before it" \
     "$(minutes "$t_data" "$t_train") min)" >&2
python - "$OUT" "$SHIPPED" <<'PY' >&2
import sys
from pathlib import Path

from safetensors.torch import load_file

new, shipped = sys.argv[1], sys.argv[2]
if Path(shipped).is_file():
    a, b = load_file(new), load_file(shipped)
    same = a.keys() == b.keys() and all(a[k].shape == b[k].shape and bool((a[k] == b[k]).all()) for k in a)
    print(f"train_backlitnet: {new} {'holds the same tensors as' if same else 'differs from'} {shipped}")
PY
