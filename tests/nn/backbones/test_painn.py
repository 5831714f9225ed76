from phicalc.testing import PotentialContract


class TestPaiNNContract(PotentialContract):
    backbone = "painn"
    hyperparameters = {"num_features": 16, "num_blocks": 2, "num_radial": 8}
