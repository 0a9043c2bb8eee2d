"""NICE on MNIST at the paper's scale (Dinh et al., 2014, section 5.1).

Launch (needs MNIST prepared for TFDS under data_dir):
    python -m experiments.run --config=experiments/configs/nice_mnist.py --config.data.data_dir=<tfds dir>

The paper's model: four additive coupling layers with alternating even/odd partitions, coupling
functions of 5 hidden ReLU layers of 1000 units, a diagonal scaling layer, a standard logistic
prior; Adam lr 1e-3, momentum 0.9, second-moment decay 0.99 ("beta2 = 0.01" in the paper's
notation), epsilon 1e-4. The batch size (200) and length (1500 epochs at 60k images = 450k steps)
are this config's choices, not the paper's statement.

Paper number: test log-likelihood 1980.50 nats on MNIST, its preprocessing: pixels dequantised
with uniform noise of 1/256 and rescaled to [0, 1], the continuous log-density of that on
[0, 1]^784 -- `loglik_cont_nats` here. `nll_bpd` is the same model's discrete bound over 256 levels.
Protocol pitfall: 1980.50 is not a bits/dim; comparing it with discrete NLLs needs -D log 256.
"""

from experiments.configs import nice


def get_config(arg: str | None = None):
    cfg = nice.get_config(None)
    cfg.model.update(hidden=(1000,) * 5)
    cfg.data.update(name="tfds:mnist")
    cfg.train.update(num_steps=450_000, batch_size=200, log_every=1000, eval_every=50_000, ckpt_every=10_000)
    cfg.train.sample_every = 50_000
    cfg.eval.update(batch_size=500, num_samples=0)
    if arg:
        raise ValueError(f"unknown config arg {arg!r}")
    return cfg
