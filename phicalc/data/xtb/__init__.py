"""Reference data from GFN2-xTB (tblite): sampled geometries labelled with E, F, q and μ.

* :mod:`phicalc.data.xtb.single_point`: the tblite calculator, single-point labels and units,
  relaxation and the finite-difference Hessian.
* :mod:`phicalc.data.xtb.sampling`: Langevin MD and normal-mode sampling of labelled frames.
* :mod:`phicalc.data.xtb.jobs`: many molecules × temperatures written to extxyz, resumable.
* :mod:`phicalc.data.xtb.smiles`: the curated organic SMILES set and SMILES list files.

The public names load lazily from :mod:`phicalc.data` (``from phicalc.data import
label_molecules``); everything else is imported from its module.
"""
