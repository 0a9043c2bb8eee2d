"""Deep generative model families, one module each, all exposing init/train_step/evaluate/sample."""
