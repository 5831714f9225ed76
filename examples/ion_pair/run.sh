#!/usr/bin/env bash
# Na⁺ and Cl⁻ in a periodic box of 32 waters (98 atoms, 9.9 Å, 1.0 g/cm³) with the default model:
# NVT at 300 K for the ion–water structure and the charges along the trajectory, and NVE over
# 5 ps at 0.5 fs for energy conservation. The two runs are independent (each starts from the
# same fresh box with Maxwell–Boltzmann momenta) and run side by side, one core each.
# Rerunning continues interrupted runs from their last checkpoint.
#   bash examples/ion_pair/run.sh        (about 30 min on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
PHICALC=${PHICALC:-.venv/bin/phicalc}
BOX="water-box:32+Na+Cl"
COMMON=(--model phi-painn-organic --structure "$BOX" --temperature 300 --timestep 0.5
    --dtype float64 --threads 1 --seed 0 --no-progress)
$PHICALC md "${COMMON[@]}" --ensemble bussi --steps 4000 --traj-every 10 --log-every 10 \
    --out md_runs/nacl_water_nvt > md_runs/nacl_water_nvt.log 2>&1 &
$PHICALC md "${COMMON[@]}" --ensemble nve --steps 10000 --traj-every 20 --log-every 10 \
    --out md_runs/nacl_water_nve > md_runs/nacl_water_nve.log 2>&1 &
wait
$PHICALC analyze md_runs/nacl_water_nvt --rdf-pairs Na-O Cl-H Cl-O Na-Cl O-O O-H
$PHICALC analyze md_runs/nacl_water_nve --no-plots
