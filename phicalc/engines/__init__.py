"""Adapters that let other simulation engines drive a phicalc Potential.

* :mod:`phicalc.engines.ipi`: an i-PI socket client (path-integral MD, replica exchange, many
  walkers; the ``phicalc ipi`` command).
* :mod:`phicalc.engines.torchsim`: a TorchSim ``ModelInterface`` (batched MD of many systems on
  one device; extra ``torchsim``).
* :mod:`phicalc.engines.openmm`: an openmm-ml potential (``MLPotential("phicalc", ...)``; extra
  ``openmm``).

Each module imports its engine lazily, so ``import phicalc.engines`` never fails.
"""
