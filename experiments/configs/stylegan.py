"""StyleGAN (Karras et al., 2019) on the embedded digits enlarged to 16x16: the CPU default run.

Launch:  python -m experiments.run --model=stylegan
Ablation (the paper's Table 1, configs A-F, at this scale):
         python -m experiments.run --config=experiments/configs/stylegan.py:C --workdir=runs/stylegan_C

The authors' networks (NVlabs `stylegan`, `training/networks_stylegan.py`) and settings, kept:
mapping network of 8 equalised layers with lr multiplier 0.01 (z and w of the same size), learned
4x4 constant input, AdaIN after every convolution with styles from learned affines of w, per-layer
noise with learned per-channel strengths (zero at init), up-sampling by a 3x3 convolution after
nearest-neighbour upsampling followed by the [1, 2, 1] blur, the discriminator's blur before its
3x3 convolution and average pooling, style mixing with probability 0.9, tracked w average (beta
0.995), equalised learning rate everywhere, non-saturating logistic loss with R1 on the reals, Adam
beta = (0, 0.99), eps 1e-8, lr 0.001, EMA of the generator with a half-life of 10k images,
minibatch standard deviation in D (group 4). Scaled for the CPU: z = w = 128, 32 feature maps at
every resolution (`fmap_max`; the paper: 512 up to 32x32, then fmap_base 8192 / stage), gamma 1
(the paper's 10 is for 1024x1024 FFHQ; the penalty's scale goes with the resolution), minibatch 32
(the paper's at 1024x1024), no mirror augmentation (digits are not mirror-symmetric). Not built:
progressive growing and its schedule. FIDs are computed untruncated (psi 1), as in the paper.

Configs A-F (arg): A/B the baseline (the traditional input from w's first copy through a dense
layer, no mapping, pixel norm, no noise, no mixing; B's tuning of the progressive GAN is not
separable here, so B = A), C adds the mapping network and AdaIN styles, D the constant input, E the
noise inputs, F mixing (= default).

Expected (measured with the launch command at an earlier version whose up/down-sampling
convolutions had free 4x4 weights and no blur; seed 0, 2000 steps of batch 32, 3 min 11 s on 2 CPU
cores), 1000 samples on the in-repo digits features: digits-FID 7.47, KID 0.56 +- 0.47, precision
0.47, recall 0.55, classifier score 4.48; feature_peak_to_mean 4.66.
"""

from experiments.configs.gan_base import base

ABLATION = {
    "A": dict(input="z", mapping_layers=0, style="none", noise_inputs=False, mixing_prob=0.0),
    "C": dict(input="z", mapping_layers=8, style="adain", noise_inputs=False, mixing_prob=0.0),
    "D": dict(input="const", mapping_layers=8, style="adain", noise_inputs=False, mixing_prob=0.0),
    "E": dict(input="const", mapping_layers=8, style="adain", noise_inputs=True, mixing_prob=0.0),
    "F": dict(input="const", mapping_layers=8, style="adain", noise_inputs=True, mixing_prob=0.9),
}
ABLATION["B"] = ABLATION["A"]


def style_base(name: str, style: str, arg: str | None):
    """The settings StyleGAN and StyleGAN2 share at CPU scale (`arg` "smoke" shrinks everything)."""
    cfg = base(name, arg)
    batch = 32
    cfg.model.update(
        dict(
            loss="gan",
            g_loss="non_saturating",
            r1_gamma=1.0,
            r1_every=1,
            z_dim=128,
            w_dim=128,
            mapping_layers=8,
            mapping_lr_mul=0.01,
            input="const",
            style=style,
            noise_inputs=True,
            mixing_prob=0.9,
            w_avg_beta=0.995,
            fmap_base=1024,
            fmap_min=1,
            fmap_max=32,
            mbstd_group=4,
            g_arch="orig",
            d_arch="orig",
            resample_filter=(1, 2, 1) if style != "demod" else (1, 3, 3, 1),
            random_flip=False,
            conv_method="matmul",
        )
    )
    cfg.optim.update(dict(name="adam", lr=0.001, b1=0.0, b2=0.99, eps=1e-8, ema_decay=0.5 ** (batch / 10_000)))
    cfg.data.image_size = 16
    cfg.train.update(num_steps=2000, batch_size=batch)
    cfg.sample.update(dict(truncation_psi=1.0, truncation_cutoff=0, mixing_layer=0, figure_rows=4, figure_cols=6))
    if arg == "smoke":
        cfg.model.update(z_dim=8, w_dim=8, mapping_layers=2, fmap_base=64, fmap_max=8)
        cfg.data.image_size = 8
        cfg.train.update(
            num_steps=4, batch_size=16, log_every=1, eval_every=0, ckpt_every=2, sample_every=0, num_samples=16
        )
        cfg.eval.update(batch_size=16, num_examples=32, num_samples=64, sample_batch=32)
        cfg.sample.update(figure_rows=2, figure_cols=3)
    return cfg


def get_config(arg: str | None = None):
    """Args: arg: None (config F), "A".."F" for the ablation, "smoke" for a 4-step tiny run."""
    cfg = style_base("stylegan", "adain", arg)
    if arg in ABLATION:
        cfg.model.update(ABLATION[arg])
        if cfg.model.mapping_layers == 0:
            cfg.model.w_dim = cfg.model.z_dim
    elif arg not in (None, "smoke"):
        raise ValueError(f"unknown config arg {arg!r}; use nothing, A..F or 'smoke'")
    return cfg
