"""Build glue that pyproject.toml cannot express: ship the repository's ``models/`` directory
inside the wheel as the package ``phicalc.models`` (no copy of the files in git).

``models/<name>/model.pt`` and ``model_card.md`` install as
``site-packages/phicalc/models/<name>/...``, where :func:`phicalc.serialization.models_directories`
finds them after a plain (non-editable) ``pip install .``. Which files ship (package data) and everything else: pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["phicalc", "phicalc.*"]), "phicalc.models"],
    package_dir={"phicalc.models": "models"},
)
