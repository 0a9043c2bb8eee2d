"""StyleGAN2 (Karras et al., 2020) on the embedded digits enlarged to 16x16: the CPU default run.

Launch:  python -m experiments.run --model=stylegan2

The `stylegan` config with the paper's changes to the generator: AdaIN replaced by modulated
convolutions with demodulation (eps 1e-8), noise and bias moved outside the style block, the toRGB
layer modulated; lazy R1 every 16 discriminator updates (weighted by 16); lr 0.002 as the paper's
config; the rest as `stylegan.py` (same nets' widths, minibatch, gamma, steps), so the two runs differ
in the generator's normalisation and the regularisation schedule. Not built: path-length
regularisation (config D) and the skip/residual architectures (configs E-F), so this is the paper's
config C (B: demodulation, C: lazy regularisation).

Expected (measured with the launch command, seed 0, 2000 steps of batch 32, 2 min 20 s on 2 CPU
cores), 1000 samples on the in-repo digits features: digits-FID 6.27, KID 0.76 +- 0.68, precision
0.47, recall 0.62, classifier score 4.81; feature_peak_to_mean 5.83 (README: against `stylegan`
and `dcgan` at the same steps and batch).
"""

from experiments.configs.stylegan import style_base


def get_config(arg: str | None = None):
    """Args: arg: None for the default run, "smoke" for a 4-step tiny run."""
    if arg not in (None, "smoke"):
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    cfg = style_base("stylegan2", "demod", arg)
    cfg.model.r1_every = 16 if arg is None else 2
    cfg.optim.lr = 0.002
    return cfg
