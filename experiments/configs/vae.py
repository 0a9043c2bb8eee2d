"""VAE (Kingma & Welling, 2014) on the embedded 8x8 digits: the CPU default run.

Launch:  python -m experiments.run --model=vae            (about 30 s on 2 CPU cores; 17 s with
         --config.train.steps_per_call=100, same numbers)
         python -m experiments.run --config=experiments/configs/vae.py:smoke   (seconds)

Architecture as in the paper's MNIST experiments, scaled to 64-pixel images: one tanh hidden layer
of 200 units in encoder and decoder, Nz=10, Gaussian q(z|x), N(0, I) prior, Bernoulli decoder,
L=1, minibatch M=100, Adam lr 1e-3.

Data protocol: sklearn digits, grey levels /16; 1500 train / 297 test by a fixed permutation;
train images re-binarised every step (x ~ Bernoulli(grey level), "dynamic binarisation"); the test
set binarised once with the run's seed.

Expected (measured with the launch command above, seed 0, 20k steps, 2 CPU cores, 41 s with the
sample-quality stage): test ELBO -22.71 nats; IWAE NLL (k=5000) 22.13 nats = 0.499 bits/dim; on 1000
samples against the training digits (in-repo digits classifier features, not Inception):
digits-FID 2.28, digits-KID 0.16 +- 0.53, precision 0.68, recall 0.75, classifier score 5.90 (held-out
real digits: FID 1.77, precision 0.89, recall 0.91, score 7.49 at 297 samples; README).
"""

import ml_collections

from experiments.configs.base import base, smoke


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: arg: None for the default run, "smoke" for a 3-step tiny run."""
    cfg = base(
        "vae",
        model=dict(latent_dim=10, hidden=(200,), activation="tanh", beta=1.0),
        data=dict(binarize="dynamic"),
        train=dict(num_steps=20000, log_every=500, eval_every=5000, ckpt_every=5000, sample_every=5000),
        # The final evaluation; eval_periodic overrides it for the cheaper evaluations during training.
        # num_samples > 0 adds the sample-quality metrics (digits-FID, KID, precision/recall,
        # classifier score) of that many samples against the training digits.
        eval=dict(iwae_k=5000, iwae_chunk=500, batch_size=100),
        eval_periodic=dict(iwae_k=100, iwae_chunk=100, num_samples=0),
        # Sampling options: may change at --mode=sample / --mode=eval on a finished workdir.
        sample=dict(temperature=1.0),
    )
    if arg == "smoke":
        cfg.model.latent_dim = 2
        cfg.model.hidden = (16,)
        smoke(cfg, iwae_k=10, iwae_chunk=5)
        cfg.eval_periodic.update(iwae_k=4, iwae_chunk=4)
    elif arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return cfg
