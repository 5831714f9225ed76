#!/usr/bin/env bash
# Condensed-water GFN2-xTB reference data (issue #15: liquid water and solvated Na+/Cl-), written
# to data/ (git-ignored). Three processes, one xTB thread each (about 40 min on 2 cores):
#   * open clusters cut from a liquid-density packing (water-cluster:N[+ions]), Langevin MD at
#     300 and 400 K, a frame every 10 fs after 50 fs;
#   * periodic 16-water boxes without and with Na+ Cl- (7.9 Å cube, 1.0 g/cm3; tblite's periodic
#     GFN2, ~4.5 s a step on one core), a frame every 5 fs after 10 fs, from the packed start:
#     the relaxation out of a packed box is what an MD run from water-box:N meets first.
# Then the clusters are split into fitting and validation parts, one composition held out whole
# (scripts/split_validation.py, group = structure). The boxes all go to training. Rerun after an
# interruption: every job resumes (--resume keeps the finished ones).
set -euo pipefail
cd "$(dirname "$0")/.."
PHICALC=${PHICALC:-.venv/bin/phicalc}
SEED=${SEED:-0}
mkdir -p data/logs
common=(--timestep 0.5 --threads 1 --seed "$SEED")
$PHICALC label --structure water-cluster:20 water-cluster:20+Na water-cluster:20+Cl \
    water-cluster:24+Na+Cl --temperatures 300 400 --frames 25 --interval 20 --equilibration 100 \
    "${common[@]}" --out data/water_clusters.extxyz --resume > data/logs/water_clusters.log 2>&1 &
$PHICALC label --structure water-box:16 --temperatures 300 400 --frames 12 --interval 10 \
    --equilibration 20 "${common[@]}" --out data/water_boxes_pure.extxyz --resume \
    > data/logs/water_boxes_pure.log 2>&1 &
$PHICALC label --structure water-box:16+Na+Cl --temperatures 300 400 --frames 12 --interval 10 \
    --equilibration 20 "${common[@]}" --out data/water_boxes_nacl.extxyz --resume \
    > data/logs/water_boxes_nacl.log 2>&1 &
wait
cat data/water_boxes_pure.extxyz data/water_boxes_nacl.extxyz > data/water_boxes.extxyz
.venv/bin/python scripts/split_validation.py data/water_clusters.extxyz --fraction 0.25 \
    --group molecule --seed 1  # holds out water-cluster:20+Cl (Cl- without Na+)
