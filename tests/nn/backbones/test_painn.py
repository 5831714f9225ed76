import pytest

from phicalc.potential import Potential
from phicalc.testing import MODEL_VARIANTS, PotentialContract


class TestPaiNNContract(PotentialContract):
    """Every variant, the ones that act after the backbone too (``AFTER_BACKBONE_VARIANTS``)."""

    backbone = "painn"
    hyperparameters = {"num_features": 16, "num_blocks": 2, "num_radial": 8}

    @pytest.fixture(params=list(MODEL_VARIANTS), ids=list(MODEL_VARIANTS))
    def model(self, request: pytest.FixtureRequest) -> Potential:
        return self.build_variant(request.param)
