"""Entry point (`python -m experiments.run`) and per-model configs."""
