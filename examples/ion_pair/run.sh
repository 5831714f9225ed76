#!/usr/bin/env bash
# Na⁺ and Cl⁻ in a periodic box of 32 waters (98 atoms, 9.9 Å, 1.0 g/cm³) with the default model:
# 2 ps of Bussi NVT at 300 K (ion–water RDFs, charges along the trajectory), then 5 ps of NVE at
# 0.5 fs from the last NVT frame (fresh Maxwell–Boltzmann momenta at 300 K) for energy
# conservation. The freshly packed box is far from equilibrium (it heats by ~100 K in the first
# 0.1 ps), which is why NVE starts from the thermostatted run, not from the packed box.
# Rerunning continues interrupted runs from their last checkpoint. MODEL picks another model
# (e.g. MODEL=painn-organic, the baseline without electrostatics), written to md_runs/<tag>_*.
# STAGES=nve NVE_START=FILE runs only the NVE part from FILE (e.g. beside the NVT on a 2nd core).
#   bash examples/ion_pair/run.sh        (about 15 min on one CPU core: compiled, 64 ms a step)
set -euo pipefail
cd "$(dirname "$0")/../.."
PHICALC=${PHICALC:-.venv/bin/phicalc}
MODEL=${MODEL:-phi-painn-organic}
TAG=${TAG:-nacl_water}
COMMON=(--model "$MODEL" --temperature 300 --timestep 0.5 --dtype float64 --seed 0 --threads 1
    --no-progress --compile)
STAGES=${STAGES:-"nvt nve"}
NVE_START=${NVE_START:-"md_runs/${TAG}_nvt/trajectory.traj"}
if [[ $STAGES == *nvt* ]]; then
    $PHICALC md "${COMMON[@]}" --structure "water-box:32+Na+Cl" --ensemble bussi --steps 4000 \
        --traj-every 10 --log-every 10 --out "md_runs/${TAG}_nvt"
    $PHICALC analyze "md_runs/${TAG}_nvt" --rdf-pairs Na-O Cl-H Cl-O Na-Cl O-O O-H
fi
if [[ $STAGES == *nve* ]]; then
    $PHICALC md "${COMMON[@]}" --structure "$NVE_START" --ensemble nve --steps 10000 \
        --traj-every 20 --log-every 10 --out "md_runs/${TAG}_nve"
    $PHICALC analyze "md_runs/${TAG}_nve" --no-plots
fi
