"""NICE (Dinh et al., 2014) on the embedded 8x8 digits: the CPU default run.

Launch:  python -m experiments.run --model=nice
         python -m experiments.run --model=nice --config.data.name=moons     (a 2-D set)
         python -m experiments.run --config=experiments/configs/nice.py:smoke   (seconds)

The paper's architecture: four additive coupling layers with the even/odd partition alternating,
coupling functions ReLU MLPs, a final diagonal scaling layer, a standard logistic prior; Adam with
the paper's settings (lr 1e-3, momentum 0.9, beta2 "0.01" in the Adam paper's first notation, i.e.
a second-moment decay of 0.99, epsilon 1e-4). Departures for the CPU default: coupling MLPs of
5 x 32 units instead of 5 x 1000 (64 dimensions, not 784, and 1500 training digits: at 5 x 256 the
test NLL rises from 2.97 bits/dim at 2500 steps to 4.63 at 10 000 while the training NLL falls to
1.49; 5 x 64 is best at 4000 steps, 2.79, then rises); data uniformly dequantised over the digits'
17 levels (the paper's 256 for MNIST: `nice_mnist.py`).

Units: `nll_bpd` is the discrete test NLL bound in bits/dim over the 17 levels (uniform = 4.09);
`loglik_cont_nats` is the continuous log-density of the dequantised digits on [0, 1]^64, the unit of
the paper's 1980.50 on MNIST.

Expected (measured, seed 0, 10 000 steps, 45 s on 2 CPU cores): test nll_bpd 2.754 (122.15 nats),
loglik_cont_nats 59.18; 1000 samples digits-FID 4.74, KID 1.02, precision/recall 0.67/0.74 (the
5 x 256 run, overfitted to 4.63 bits/dim, had FID 2.90). On 2-D sets (5000 held-out points, nats
per point): moons 0.846, swissroll 1.675 (25 s each; a 30-component full GMM fitted by sklearn
scores 0.297 and 0.459).
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
            hidden=(32,) * 5,
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
