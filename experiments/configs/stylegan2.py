"""StyleGAN2 (Karras et al., 2020) on the embedded digits enlarged to 16x16: the CPU default run.

Launch:  python -m experiments.run --model=stylegan2
Ablation (the paper's Table 1, configs A-F, at this scale):
         python -m experiments.run --config=experiments/configs/stylegan2.py:C --workdir=runs/stylegan2_C

Config F, the paper's and the authors' (NVlabs `stylegan2`, `run_training.py` and
`training/networks_stylegan2.py`): the `stylegan` config with AdaIN replaced by modulated
convolutions with demodulation (eps 1e-8), noise (one strength per layer) and bias moved outside
the style block, the toRGB layers modulated; up- and down-sampling with the [1, 3, 3, 1] FIR filter;
the skip generator (a toRGB at every resolution, summed up the resolutions) and the residual
discriminator; lazy R1 every 16 discriminator updates (weighted by 16); path-length regularisation
(weight 2, every 4 generator updates on half a minibatch, running-mean decay 0.01); lr 0.002.
The rest as `stylegan.py` (widths, minibatch, gamma 1, steps). Config F's doubled feature maps
(fmap_base 2048 here against E's 1024) change nothing at this scale: every resolution is capped at
`fmap_max` = 32 maps. Not built: the reference's separate optimizer steps for the lazy regularisers
(their terms are added to that update's loss).

Table 1 (arg): A the StyleGAN baseline (`stylegan.py`'s nets, lr 0.001, R1 every update), B weight
demodulation with StyleGAN2's orig nets and FIR filter, C lazy R1, D path-length regularisation,
E the skip generator and residual discriminator with lr 0.002, F the doubled feature maps (= default).

Expected (measured at an earlier version with config C's settings and free 4x4 up/down-sampling
weights, seed 0, 2000 steps of batch 32, 2 min 20 s on 2 CPU cores), 1000 samples on the in-repo
digits features: digits-FID 6.27, KID 0.76 +- 0.68, precision 0.47, recall 0.62, classifier score
4.81; feature_peak_to_mean 5.83.
"""

from experiments.configs.stylegan import style_base

V1 = dict(style="adain", resample_filter=(1, 2, 1), g_arch="orig", d_arch="orig")
V2 = dict(style="demod", resample_filter=(1, 3, 3, 1), g_arch="orig", d_arch="orig")
TABLE1 = {
    "A": dict(V1, r1_every=1, pl_weight=0.0, pl_every=1, lr=0.001, base_mul=1),
    "B": dict(V2, r1_every=1, pl_weight=0.0, pl_every=1, lr=0.001, base_mul=1),
    "C": dict(V2, r1_every=16, pl_weight=0.0, pl_every=1, lr=0.001, base_mul=1),
    "D": dict(V2, r1_every=16, pl_weight=2.0, pl_every=4, lr=0.001, base_mul=1),
    "E": dict(V2, g_arch="skip", d_arch="resnet", r1_every=16, pl_weight=2.0, pl_every=4, lr=0.002, base_mul=1),
    "F": dict(V2, g_arch="skip", d_arch="resnet", r1_every=16, pl_weight=2.0, pl_every=4, lr=0.002, base_mul=2),
}


def apply_table1(cfg, letter: str, smoke: bool = False):
    """`cfg` (a `style_base` config) set to the paper's Table 1 configuration `letter`."""
    row = dict(TABLE1[letter])
    cfg.optim.lr = row.pop("lr")
    cfg.model.fmap_base *= row.pop("base_mul")
    if smoke and row["r1_every"] > 1:
        row.update(r1_every=2, pl_every=2 if row["pl_every"] > 1 else 1)
    cfg.model.update(row)
    cfg.model.pl_decay, cfg.model.pl_batch_shrink = 0.01, 2
    return cfg


def get_config(arg: str | None = None):
    """Args: arg: None (config F), "A".."F" for the ablation, "smoke" for a 4-step tiny run of F."""
    if arg not in (None, "smoke", *TABLE1):
        raise ValueError(f"unknown config arg {arg!r}; use nothing, A..F or 'smoke'")
    cfg = style_base("stylegan2", "demod", arg if arg == "smoke" else None)
    return apply_table1(cfg, arg if arg in TABLE1 else "F", smoke=arg == "smoke")
