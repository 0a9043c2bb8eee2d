"""GAN at paper scale (Goodfellow et al., 2014, Table 1): MNIST 28x28 through TFDS.

Launch (MNIST prepared for TFDS in array_record format, e.g.
`tfds build mnist --file_format=array_record --data_dir=DIR`):

    python -m experiments.run --config=experiments/configs/gan_mnist.py --config.data.data_dir=DIR

Paper setup: generator MLP 1200-1200 ReLU with a sigmoid output, noise U[-1, 1]^100; maxout
discriminator 240x5, 240x5 with dropout (0.2 input, 0.5 hidden); k = 1; minibatch 100; SGD with
momentum under max-norm constraints (this project: Adam 2e-4, beta1 0.5, see `gan.py`).

Paper's number: Gaussian Parzen-window log-likelihood of the MNIST test set under 10 000 samples,
sigma cross-validated on the validation set: 225 +- 2 nats (Table 1). Here: `eval.parzen_samples`
10 000, sigma chosen on the first half of the test split and reported on the second half. Not
measured in this repository (no MNIST offline). The estimate's weaknesses are in
`gm_jax.metrics.parzen`.
"""

from experiments.configs import gan


def get_config(arg: str | None = None):
    """Args: arg: None for the paper run, "smoke" for a tiny run of the same config."""
    cfg = gan.get_config(arg)
    cfg.data.name = "tfds:mnist"
    if arg != "smoke":
        cfg.train.update(num_steps=100_000, log_every=1000, ckpt_every=10_000, sample_every=10_000)
    cfg.eval.update(num_samples=0, parzen_samples=10_000 if arg != "smoke" else 64)
    return cfg
