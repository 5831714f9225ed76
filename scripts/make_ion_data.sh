#!/usr/bin/env bash
# The ion supplement's data (issue #15; recipes/pilot/ion_supplement.yaml), written to data/
# (git-ignored), after scripts/make_default_data.sh. Deterministic; ~1 min on one core.
#   1. phicalc/data/charged_set_ions.txt labelled as the charged set's species are (MD frames at
#      300 and 600 K, 6 each), split by the charged set's rule and seed
#      -> data/charged_ions_v1_{train,val,test}.extxyz (+ _summary.json: frames kept and dropped);
#   2. charge targets that carry each molecule's GFN2-xTB dipole (*_dq.extxyz), as every file the
#      charge-aware recipes train on.
# No vertical states, so no unbound anions to drop; the organic set is neutral and shares no
# species with the list.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p data/logs
[ -s data/charged_ions_v1_summary.json ] || {
  rm -f data/charged_ions_v1_{train,val,test}.extxyz  # an interrupted run starts again
  FRAMES=6 SIZE=ions_v1 LIST=phicalc/data/charged_set_ions.txt STAGES=species \
    scripts/make_charged_data.sh > data/logs/charged_ions_v1.log; }
$PYTHON scripts/dipole_charges.py data/charged_ions_v1_{train,val,test}.extxyz
