"""Bad input through the CLI: one line on stderr, exit code 2, nothing written or damaged."""

import hashlib
import os
import shutil
import subprocess
import sys
import time

import pytest

from experiments.configs import vae as vae_config
from gm_jax import train as loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = "--config=experiments/configs/vae.py:smoke"


def cli(*args, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(out, *needles):
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert len(lines) == 1, out.stderr[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in out.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def tree_digest(path):
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            h.update(os.path.relpath(p, path).encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished smoke run (its config as the CLI builds it: smoke config, default overrides none)."""
    wd = tmp_path_factory.mktemp("done") / "run"
    out = cli(SMOKE, f"--workdir={wd}")
    assert out.returncode == 0, out.stderr[-2000:]
    return wd


def test_good_run_prints_progress_and_summary(finished_run):
    assert os.path.exists(finished_run / "eval.json")


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--model=nope"], ["unknown model 'nope'", "vae"]),
        (["--model=vae", "--config.train.no_such_key=1"], ["no_such_key"]),
        (["--model=vae", "--config.train.batch_size=abc"], ["batch_size"]),
        (["--model=vae", "--config.train.batch_size=12"], ["not divisible by the 8 devices"]),
        ([SMOKE, "--config.data.name=nope"], ["unknown dataset 'nope'", "digits", "ring8_wgangp"]),
        ([SMOKE, "--mode=bogus"], ["mode"]),
        ([SMOKE, "stray"], ["unexpected arguments"]),
        ([SMOKE, "--mode=eval"], ["no run to eval"]),
        (["--model=gmm", "--config.model.reg_covar=0"], ["reg_covar must be positive"]),
        (["--model=wgan", "--config.model.n_critic=0"], ["n_critic"]),
        (
            ["--config=experiments/configs/stylegan2_ffhq.py", "--mode=describe", "--config.model.g_arch=wide"],
            ["model.g_arch must be one of orig, skip, resnet"],
        ),
        (["--model=stylegan", "--mode=describe", "--config.model.d_arch=resnet"], ["StyleGAN2's architecture"]),
        (
            ["--config=experiments/configs/dcgan_celeba.py", "--mode=describe", "--config.model.kernel=7"],
            ["model.kernel must be one of 3, 4, 5"],
        ),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, needles):
    wd = tmp_path / "wd"
    out = cli(*args, f"--workdir={wd}")
    assert_one_line_error(out, *needles)
    assert not wd.exists()


@pytest.mark.parametrize(
    "model,override,needle",
    [
        ("vae", ("train", "batch_size", 0), "train.batch_size must be a positive integer"),
        ("vae", ("train", "num_steps", -3), "train.num_steps must be a positive integer"),
        ("gmm", ("model", "n_components", 5000), "larger than the batch"),
        ("gmm", ("model", "init_params", "magic"), "init_params"),
        ("hmm", ("model", "n_states", 0), "n_states must be a positive integer"),
        ("hmm", ("model", "emission", "poisson"), "model.emission"),
    ],
)
def test_bad_model_settings_are_refused_before_anything_is_written(tmp_path, model, override, needle):
    # The same checks the CLI reports in one line (above), run in-process: a UserError, no workdir.
    from gm_jax import load_config
    from gm_jax.core.errors import UserError

    cfg = load_config(model)
    section, key, value = override
    cfg[section][key] = value
    wd = tmp_path / "wd"
    with pytest.raises(UserError, match=needle):
        loop.train(model, cfg, str(wd))
    assert not wd.exists()


def test_describe_writes_the_parameter_summary_without_data(tmp_path):
    import json

    wd = tmp_path / "wd"
    out = cli("--config=experiments/configs/wgan_gp_cifar10.py", "--mode=describe", f"--workdir={wd}")
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads((wd / "model_summary.json").read_text())
    assert got["networks"] == {"g": 5_179_907, "d": 4_114_689} and got["total_params"] == 9_294_596
    assert sorted(os.listdir(wd)) == ["model_summary.json"] and "total" in out.stdout


def test_missing_tfds_data_says_how_to_provide_it(tmp_path):
    wd = tmp_path / "wd"
    out = cli(SMOKE, "--config.data.name=tfds:mnist", f"--config.data.data_dir={tmp_path / 'tfds'}", f"--workdir={wd}")
    assert_one_line_error(out, "tfds:mnist".split(":")[1], "not found", "--config.data.name=digits")
    assert not wd.exists()


def test_workdir_of_another_config_is_refused_untouched(finished_run):
    before = tree_digest(finished_run)
    out = cli(SMOKE, "--config.optim.lr=0.5", f"--workdir={finished_run}")
    assert_one_line_error(out, "different config", "optim.lr")
    out = cli("--model=vae", "--config.train.batch_size=16", f"--workdir={finished_run}")
    assert_one_line_error(out, "different config")
    assert tree_digest(finished_run) == before


def test_workdir_of_another_model_is_refused(finished_run, tmp_path):
    wd = tmp_path / "other"
    shutil.copytree(finished_run, wd)
    cfg_path = wd / "config.json"
    cfg_path.write_text(cfg_path.read_text().replace('"model_name": "vae"', '"model_name": "wgan"'))
    before = tree_digest(wd)
    out = cli(SMOKE, f"--workdir={wd}")
    assert_one_line_error(out, "holds a run of model 'wgan'")
    assert tree_digest(wd) == before


def test_foreign_workdir_is_refused_untouched(tmp_path):
    wd = tmp_path / "home"
    wd.mkdir()
    (wd / "thesis.tex").write_text("precious")
    out = cli(SMOKE, f"--workdir={wd}")
    assert_one_line_error(out, "holds no gm_jax run")
    assert os.listdir(wd) == ["thesis.tex"] and (wd / "thesis.tex").read_text() == "precious"


def _rewrite_latest_checkpoint(wd, which, change) -> list[str]:
    """Replace the bytes of the latest checkpoint's files named `which(f)` by `change(bytes)`."""
    latest = max(int(s) for s in os.listdir(wd / "checkpoints") if s.isdigit())
    hit = []
    for root, _, files in os.walk(wd / "checkpoints" / str(latest)):
        for f in filter(which, files):
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                data = fh.read()
            with open(p, "wb") as fh:
                fh.write(change(data))
            hit.append(p)
    return hit


def test_unreadable_checkpoint_is_reported_and_kept(finished_run, tmp_path):
    wd = tmp_path / "corrupt"
    shutil.copytree(finished_run, wd)
    victims = _rewrite_latest_checkpoint(
        wd, lambda f: f != "commit_success.txt" and not f.startswith("_CHECKPOINT"), lambda data: b"garbage"
    )
    before = tree_digest(wd)
    out = cli(SMOKE, "--config.train.num_steps=5", f"--workdir={wd}")
    assert_one_line_error(out, "unreadable", "left as is")
    assert tree_digest(wd) == before and all(os.path.exists(v) for v in victims)


def test_resume_through_cli_extends_a_finished_run(finished_run, tmp_path):
    wd = tmp_path / "more"
    shutil.copytree(finished_run, wd)
    out = cli(SMOKE, "--config.train.num_steps=5", f"--workdir={wd}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "step 4/5" in out.stdout and "step 1/5" not in out.stdout
    assert "done: vae step 5" in out.stdout


def test_eval_and_sample_modes(finished_run, tmp_path):
    wd = tmp_path / "modes"
    shutil.copytree(finished_run, wd)
    os.remove(wd / "eval.json")
    assert cli(SMOKE, "--mode=eval", f"--workdir={wd}").returncode == 0
    assert (wd / "eval.json").exists()
    assert cli(SMOKE, "--mode=sample", f"--workdir={wd}").returncode == 0


def test_notebook_train_is_the_cli_train(tmp_path):
    """The importable `train` refuses what the CLI refuses (it raises instead of exiting)."""
    cfg = vae_config.get_config("smoke")
    cfg.train.batch_size = 12
    with pytest.raises(loop.UserError, match="not divisible"):
        loop.train("vae", cfg, str(tmp_path / "x"))


# ---------------------------------------------------------------- faults and bad input at the mechanism


@pytest.mark.parametrize(
    "args,needles",
    [
        ([SMOKE, "--config.optim.name=bogus"], ["optim.name must be one of"]),
        ([SMOKE, "--config.model.activation=bogus"], ["model.activation", "bogus"]),
        ([SMOKE, "--config.model.latent_dim=0"], ["model.latent_dim must be a positive integer"]),
        ([SMOKE, "--config.train.max_to_keep=-1"], ["train.max_to_keep must be a positive integer"]),
        ([SMOKE, "--config.train.max_to_keep=0"], ["train.max_to_keep must be a positive integer"]),
        ([SMOKE, "--config.train.steps_per_call=2"], ["steps_per_call=2 must divide train.num_steps"]),
        ([SMOKE, "--config.train.steps_per_call=0"], ["train.steps_per_call must be a positive integer"]),
        ([SMOKE, "--config.model.dtype=float16"], ["model.dtype must be float32 or bfloat16"]),
        ([SMOKE, "--config.data.num_workers=-1"], ["data.num_workers must be a non-negative integer"]),
        ([SMOKE, "--config.data.num_threads=-2"], ["data.num_threads must be a non-negative integer"]),
        ([SMOKE, "--config.eval.iwae_k=0"], ["eval.iwae_k"]),
        ([SMOKE, "--config.eval.features=inception"], ["eval.features"]),
        ([SMOKE, "--config.no.such=1"], ["unknown config key 'no.such'", "train", "model"]),
        ([SMOKE, "--config.train.checkpoint_every=50"], ["unknown config key 'train.checkpoint_every'", "ckpt_every"]),
        (
            ["--model=hmm", "--config.model.emission=categorical", "--config.model.n_symbols=5"],
            ["categorical needs sequences of symbols"],
        ),
        (["--model=hmm", "--config.model.sample_length=0"], ["model.sample_length must be a positive integer"]),
        (["--model=gmm", "--config.eval.num_samples=10", "--config.eval.features=digits"], ["eval.features=digits"]),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(tmp_path, args, needles):
    wd = tmp_path / "wd"
    out = cli(*args, f"--workdir={wd}")
    assert_one_line_error(out, *needles)
    assert not wd.exists()
    assert "\\'" not in out.stderr and "\\n" not in out.stderr


def test_workdir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    assert_one_line_error(cli(SMOKE, f"--workdir={f}"), "not a directory")
    assert f.read_text() == "x"


def test_missing_first_stage_is_refused_and_not_created(tmp_path):
    missing = tmp_path / "nothing_here"
    out = cli(SMOKE, f"--config.train.init_from={missing}", f"--workdir={tmp_path / 'wd'}")
    assert_one_line_error(out, "init_from", "no gm_jax run")
    assert not missing.exists() and not (tmp_path / "wd").exists()


def _mount_tmpfs(path, options):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if r.returncode:
        pytest.skip("mounting a tmpfs needs root")  # CI and the dev machine run as root


def test_read_only_filesystem_is_refused(tmp_path):
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "ro,size=64k")
    try:
        assert_one_line_error(cli(SMOKE, f"--workdir={ro / 'run'}"), "cannot be created or written")
    finally:
        subprocess.run(["umount", str(ro)])


def test_full_disk_gives_one_line_naming_the_last_checkpoint(tmp_path):
    small = tmp_path / "small"
    _mount_tmpfs(small, "size=400k")
    try:
        wd = small / "run"
        out = cli(
            SMOKE,
            "--config.train.num_steps=60",
            "--config.train.ckpt_every=1",
            "--config.train.max_to_keep=60",
            f"--workdir={wd}",
        )
        assert_one_line_error(out, "no space left", "last good checkpoint (step")
        last = int(out.stderr.split("(step ")[1].split(")")[0])
        assert str(last) in os.listdir(wd / "checkpoints")
    finally:
        subprocess.run(["umount", str(small)])


def test_checkpoint_with_non_finite_values_is_refused_untouched(finished_run, tmp_path):
    import jax
    import numpy as np

    from gm_jax.core.checkpoint import Checkpointer

    wd = tmp_path / "damaged"
    shutil.copytree(finished_run, wd)
    ck = Checkpointer(str(wd / "checkpoints"))
    step = ck.latest_step()
    state = ck.restore_raw()
    ck.close()
    shutil.rmtree(wd / "checkpoints" / str(step))
    leaves, tree = jax.tree.flatten(state)
    leaves = [np.full_like(x, np.nan) if np.issubdtype(np.asarray(x).dtype, np.floating) else x for x in leaves]
    ck = Checkpointer(str(wd / "checkpoints"))  # a fresh manager: the old one remembers the step as saved
    ck.save(step, jax.tree.unflatten(tree, leaves))
    ck.close()
    assert ck.committed_step() == step
    before = tree_digest(wd)
    out = cli(SMOKE, "--config.train.num_steps=5", f"--workdir={wd}")
    assert_one_line_error(out, "non-finite values", "left as is")
    assert tree_digest(wd) == before


def test_truncated_manifest_gives_one_line(finished_run, tmp_path):
    wd = tmp_path / "truncated"
    shutil.copytree(finished_run, wd)
    assert _rewrite_latest_checkpoint(wd, lambda f: f == "manifest.ocdbt", lambda data: data[: len(data) // 2])
    out = cli(SMOKE, "--config.train.num_steps=5", f"--workdir={wd}")
    assert_one_line_error(out, "unreadable")


def test_second_run_on_a_workdir_in_use_is_refused(tmp_path):
    wd = tmp_path / "busy"
    first = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", SMOKE, "--config.train.num_steps=1000000", f"--workdir={wd}"],
        cwd=ROOT,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # the first run holds the lock once it has written its config
            if (wd / "config.json").exists():
                break
            time.sleep(0.1)
        out = cli(SMOKE, "--config.train.num_steps=1000000", f"--workdir={wd}")
        assert_one_line_error(out, "in use by another running process")
    finally:
        first.kill()
        first.wait(timeout=60)
    # The lock dies with its owner: the same command now resumes.
    out = cli(SMOKE, "--config.train.num_steps=2", f"--workdir={wd}")
    assert out.returncode == 0, out.stderr[-2000:]
