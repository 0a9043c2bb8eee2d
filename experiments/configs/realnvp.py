"""RealNVP (Dinh et al., 2016) on the embedded 8x8 digits: the CPU default run.

Launch:  python -m experiments.run --model=realnvp
         python -m experiments.run --model=realnvp --config.data.name=swissroll   (a 2-D set)
         python -m experiments.run --config=experiments/configs/realnvp.py:smoke   (seconds)

The paper's multi-scale architecture at two scales: 8x8x1 -> three checkerboard affine couplings ->
squeeze to 4x4x4 -> three channel-wise couplings -> half factored out -> four checkerboard couplings
on 4x4x2; s = scale * tanh(.); residual conv coupling nets; a standard Gaussian prior; the logit
transform with alpha = 0.05 (Jacobian counted); Adam lr 1e-3, batch 64. Departures: coupling nets
of 2 residual blocks of 32 channels (paper: 8 blocks of 64 on CIFAR-10), no batch normalisation
(ActNorm is the option: --config.model.norm=actnorm), decoupled weight decay 5e-5 (AdamW) in place
of the paper's L2 term.

Units as for NICE: `nll_bpd` over the digits' 17 levels (uniform = 4.09 bits/dim).

Expected: not yet measured with the launch command above (the smoke config runs in the tests).
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
            channels=32,
            num_blocks=2,
            norm="none",
            logit_alpha=0.05,
            point_couplings=8,
            point_hidden=(128, 128),
        )
    )
    cfg.optim.update(name="adamw", weight_decay=5e-5)
    cfg.train.update(num_steps=10000, batch_size=64)
    if arg == "smoke":
        return smoke(cfg)
    if arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return cfg
