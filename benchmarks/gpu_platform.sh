#!/usr/bin/env bash
# The platform's GPU figures in one run (README, "Input path, dispatch and precision on a GPU"):
#   bash benchmarks/gpu_platform.sh OUT_DIR
# 1. bfloat16 vs float32 step time (VAE 784-512-20, DCGAN 32x32x3), batch 128;
# 2. the input path's examples/s against what the DCGAN and DDPM U-Net steps consume at batch 128;
# 3. the default VAE and DCGAN runs in float32 and in bfloat16: test ELBO / digits-FID.
set -u
out=${1:-gpu_out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/gpu.txt" 2>&1
python3 -m benchmarks.bf16_step --steps=300 2>&1 | grep -v -i warn | tee "$out/bf16_step.txt"
python3 -m benchmarks.input_pipeline --examples=20000 --steps=100 --model_steps=30 2>&1 | grep -v -i warn \
  | tee "$out/input_pipeline.txt"
for model in vae dcgan; do
  for dtype in float32 bfloat16; do
    extra=""
    [ "$model" = vae ] && extra="--config.train.steps_per_call=100"
    start=$(date +%s)
    python3 -m experiments.run --model=$model --workdir=/tmp/gpu_runs/${model}_$dtype \
      --config.model.dtype=$dtype $extra > "$out/${model}_${dtype}.log" 2>&1
    echo "$model $dtype rc=$? $(( $(date +%s) - start )) s" | tee -a "$out/runs.txt"
    cp /tmp/gpu_runs/${model}_$dtype/eval.json "$out/${model}_${dtype}_eval.json" 2>/dev/null
  done
done
