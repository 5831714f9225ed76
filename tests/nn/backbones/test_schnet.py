from phicalc.testing import PotentialContract


class TestSchNetContract(PotentialContract):
    backbone = "schnet"
    hyperparameters = {"num_features": 16, "num_filters": 16, "num_blocks": 2, "num_radial": 8}
