"""NICE (Dinh et al., 2014) on the embedded 8x8 digits: the CPU default run.

Launch:  python -m experiments.run --model=nice
         python -m experiments.run --model=nice --config.data.name=moons     (a 2-D set)
         python -m experiments.run --config=experiments/configs/nice.py:smoke   (seconds)

The paper's architecture: four additive coupling layers with the even/odd partition alternating,
coupling functions ReLU MLPs, a final diagonal scaling layer, a standard logistic prior; Adam with
the paper's settings (lr 1e-3, momentum 0.9, beta2 "0.01" in the Adam paper's first notation, i.e.
a second-moment decay of 0.99, epsilon 1e-4). Departures for the CPU default: coupling MLPs of
5 x 256 units instead of 5 x 1000 (64 dimensions, not 784); data uniformly dequantised over the
digits' 17 levels (the paper's 256 for MNIST: `nice_mnist.py`).

Units: `nll_bpd` is the discrete test NLL bound in bits/dim over the 17 levels (uniform = 4.09);
`loglik_cont_nats` is the continuous log-density of the dequantised digits on [0, 1]^64, the unit of
the paper's 1980.50 on MNIST.

Expected: not yet measured with the launch command above (the smoke config runs in the tests).
"""

from experiments.configs.flow_base import base, smoke


def get_config(arg: str | None = None):
    """Args: arg: None for the default run, "smoke" for a 3-step tiny run."""
    cfg = base("nice")
    cfg.model.update(
        dict(
            kind="nice",
            prior="logistic",
            num_couplings=4,
            hidden=(256,) * 5,
            logit_alpha=0.0,
            point_couplings=4,
            point_hidden=(128, 128, 128),
        )
    )
    cfg.optim.update(b1=0.9, b2=0.99, eps=1e-4)
    cfg.train.update(num_steps=10000)
    if arg == "smoke":
        return smoke(cfg)
    if arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return cfg
