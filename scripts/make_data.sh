#!/usr/bin/env bash
# Regenerate the GFN2-xTB reference data behind the shipped models (written to data/, git-ignored).
# Deterministic given the seeds below. Runs the jobs two at a time (one per core). Rerun after an
# interruption: every job resumes (--resume keeps the finished ones). PART=organic: the organic
# set only.
set -euo pipefail
cd "$(dirname "$0")/.."
PHICALC=${PHICALC:-.venv/bin/phicalc}
PART=${PART:-all}
mkdir -p data

# Ac-Ala3-NHMe (42 atoms) at 500 K, MD22 budget: 6,000 frames from two independent trajectories
# (1 fs steps, a frame every 3 fs); the test trajectory has its own seed and is never trained on.
[ "$PART" = organic ] || $PHICALC label --structure ac-ala3 --temperatures 500 --frames 3000 --interval 3 --timestep 1.0 \
    --equilibration 500 --seed 1 --out data/ac_ala3_500K_train_a.extxyz --resume --no-progress &
[ "$PART" = organic ] || $PHICALC label --structure ac-ala3 --temperatures 500 --frames 3000 --interval 3 --timestep 1.0 \
    --equilibration 500 --seed 2 --out data/ac_ala3_500K_train_b.extxyz --resume --no-progress &
wait
[ "$PART" = organic ] || $PHICALC label --structure ac-ala3 --temperatures 500 --frames 600 --interval 5 --timestep 1.0 \
    --equilibration 500 --seed 99 --out data/ac_ala3_500K_test.extxyz --resume --no-progress &

# General organic set (H, C, N, O): the training molecules at 300/550/800 K; the held-out
# molecules (never trained on) for the test table.
$PHICALC label --organic-set train --temperatures 300 550 800 --frames 6 --interval 10 \
    --timestep 1.0 --equilibration 50 --seed 3 --out data/organic_train.extxyz --resume --no-progress &
wait
$PHICALC label --organic-set heldout --temperatures 300 550 800 --frames 6 --interval 10 \
    --timestep 1.0 --equilibration 50 --seed 4 --out data/organic_heldout.extxyz --resume --no-progress
