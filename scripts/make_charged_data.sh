#!/usr/bin/env bash
# Charged and long-range GFN2-xTB reference data (issue #15 item 1), written to data/ (git-ignored).
# One process, one xTB thread, deterministic given --seed. Default: the pilot (~7 min on one core).
#
# Writes data/charged_${SIZE}_{train,val,test}.extxyz and data/charged_${SIZE}_summary.json
# (frame counts per category and split, dropped frames per reason, cost).
#
# Scale up (see reports/charged_data.md): more frames and temperatures per species
# (FRAMES, TEMPS), more dimer orientations (ORIENT) and distances, more species in
# phicalc/data/charged_set.txt (or your own list: --charged-set FILE). Cost is linear in each;
# run several seeds / lists as separate processes to use more cores (one thread each).
# LIST=FILE labels another list in the same format (e.g. phicalc/data/charged_set_fpscl.txt),
# STAGES the parts to make (default all: species vertical dimers clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
PHICALC=${PHICALC:-.venv/bin/phicalc}
SIZE=${SIZE:-pilot}
FRAMES=${FRAMES:-3}
TEMPS=${TEMPS:-"300 600"}
ORIENT=${ORIENT:-2}
SEED=${SEED:-0}
LIST=${LIST:-}
STAGES=${STAGES:-"species vertical dimers clusters"}
mkdir -p data
# shellcheck disable=SC2086
$PHICALC label --charged-set $LIST --stages $STAGES --temperatures $TEMPS --frames "$FRAMES" --interval 10 \
    --timestep 1.0 --equilibration 50 --vertical-frames 1 --dimer-orientations "$ORIENT" \
    --contact-scales 0.75 0.9 1.1 --dimer-distances 4.5 6 8 11 15 --max-waters 6 \
    --transfer-tolerance 0.01 --transfer-check-from 4.0 --threads 1 --seed "$SEED" \
    --out "data/charged_${SIZE}" 2>&1 | tee "data/charged_${SIZE}.log"
