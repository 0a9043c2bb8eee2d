"""GAN (Goodfellow et al., 2014) on the embedded 8x8 digits: the CPU default run.

Launch:  python -m experiments.run --model=gan
         python -m experiments.run --model=gan --config.data.name=ring8_wgangp   (2-D, MLP nets)

The paper's MNIST setting: generator MLP with two ReLU layers of 1200 units and a sigmoid output,
noise U[-1, 1]^100; discriminator with two maxout layers (240 units x 5 pieces), dropout 0.5 on the
hidden layers and 0.2 on the input; k = 1 discriminator update per generator update; minibatch 100.
One departure: the paper trained with SGD and momentum under max-norm constraints on every weight
column (its pylearn2 setup); without those constraints SGD at the paper's rate 0.1 diverges here
(non-finite loss within 10 steps on the 2-D sets), so the default is Adam 2e-4, beta1 0.5 (the
DCGAN-era practice); `--config.optim.name=sgd --config.optim.lr=... --config.optim.momentum=...`
gives SGD. The generator's loss is the non-saturating -log D(G(z)) (`model.g_loss=minimax` gives
the game's log(1 - D(G(z)))).

Metric of the paper: the Gaussian Parzen-window log-likelihood of the test set under 10 000
samples, sigma cross-validated: MNIST 225 +- 2 nats (not comparable with the digits here: 8x8 pixels,
17 grey levels). `eval.parzen_samples=10000` computes it (`gm_jax.metrics.parzen`).

Expected (measured with the launch command, seed 0, 3000 steps of batch 100, 60 s on 2 CPU cores):
Parzen log-likelihood of the test digits' second half under 10 000 samples -25.03 +- 0.70 nats
(sigma 0.36); the generator collapses onto one digit-like image (digits-FID 141.7, precision 0.79,
recall 0, classifier score 1.03 of 10). On `ring8_wgangp` it covers 5-8 of 8 modes (README).
"""

from experiments.configs.gan_base import base, smoke


def get_config(arg: str | None = None):
    """Args: arg: None for the default run, "smoke" for a 4-step tiny run."""
    cfg = base("gan", arg)
    cfg.model.update(
        dict(
            loss="gan",
            g_loss="non_saturating",
            arch="auto",
            image_arch="mlp",
            z_dim=100,
            noise="uniform",
            n_critic=1,
            g_hidden=(1200, 1200),
            d_hidden=(240, 240),
            mlp_act="relu",
            d_maxout=5,
            d_dropout=0.5,
            d_input_dropout=0.2,
            point_hidden=(512, 512, 512),
            point_z_dim=2,
        )
    )
    cfg.optim.update(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999))
    cfg.train.update(num_steps=3000, batch_size=100)
    cfg.eval.parzen_samples = 10000
    if arg == "smoke":
        smoke(cfg)
    elif arg:
        raise ValueError(f"unknown config arg {arg!r}; use nothing or 'smoke'")
    return cfg
