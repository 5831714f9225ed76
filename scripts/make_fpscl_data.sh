#!/usr/bin/env bash
# The F/P/S/Cl supplement pilot's data (issue #15; recipes/pilot/fpscl_supplement.yaml), written to
# data/ (git-ignored), after scripts/make_default_data.sh. Deterministic; ~3 min on one core.
#   1. phicalc/data/charged_set_fpscl.txt labelled as the charged set is (species MD frames,
#      vertical ±1 states, ion-water and neutral-water dimer scans; no clusters), split by the
#      charged set's rule and seed -> data/charged_fpscl_v1_{train,val,test}; unbound anions dropped ->
#      data/charged_fpscl_v2_*;
#   2. the organic training file without the species the charged set and the supplement hold out
#      -> data/organic_train_fit_v2.extxyz (+ _dropped.json: frames dropped per species);
#   3. charge targets that carry each molecule's GFN2-xTB dipole for the new files (*_dq.extxyz).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p data/logs
[ -s data/charged_fpscl_v1_summary.json ] || {
  rm -f data/charged_fpscl_v1_{train,val,test}.extxyz  # an interrupted run starts again
  FRAMES=6 ORIENT=3 SIZE=fpscl_v1 LIST=phicalc/data/charged_set_fpscl.txt \
    STAGES="species vertical dimers" scripts/make_charged_data.sh > data/logs/charged_fpscl_v1.log; }
$PYTHON scripts/drop_unbound_anions.py --input data/charged_fpscl_v1 --out data/charged_fpscl_v2
$PYTHON scripts/drop_unseen_species.py data/organic_train_fit.extxyz \
  --heldout data/charged_v2_{val,test}.extxyz data/charged_fpscl_v2_{val,test}.extxyz \
  --out data/organic_train_fit_v2.extxyz
$PYTHON scripts/dipole_charges.py data/charged_fpscl_v2_{train,val,test}.extxyz data/organic_train_fit_v2.extxyz
