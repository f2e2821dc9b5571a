"""Aim tracking, read back with Aim's own SDK; `noprop report` and its plots.

Closed Aim runs live in per-run chunks until Aim's indexer merges them into the repository
index, which `aim up` does in the background; the SDK only sees indexed runs, so the tests
index explicitly (``index_runs``) before reading.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tomli

from conftest import REPO
from noprop_core.engine.runs.fresh import start_run as run

DIGITS = REPO / "recipes" / "digits_dt.toml"
SHORT = ["train.epochs=3", "data.subset=800", "variant.timesteps=4", "eval.train_subset=200", "eval.every=1"]


def index_runs(repo_dir):
    from aim import Repo
    from aim.sdk.index_manager import RepoIndexManager

    repo = Repo(str(repo_dir))
    manager = RepoIndexManager.get_index_manager(repo)
    for run_hash in repo._all_run_hashes():  # the public SDK offers no "index now"
        manager.index(run_hash)
    return Repo(str(repo_dir))


def values_by_step(metric) -> list[float]:
    """A metric's values in step order (``values.values_list()`` does not promise an order)."""
    steps, (values, _epochs, _times) = metric.data.items_list()
    return [value for _, value in sorted(zip(steps, values))]


@pytest.fixture(scope="module")
def tracked_run(registry, tmp_path_factory):
    """A short digits run tracked into a fresh Aim repository."""
    root = tmp_path_factory.mktemp("tracked")
    overrides = [*SHORT, "tracker.name=aim", f'tracker.repo="{root / "aimrepo"}"']
    run_dir, metrics = run(DIGITS, registry, overrides=overrides, out_dir=root / "run")
    return root / "aimrepo", run_dir, metrics


@pytest.mark.slow
def test_aim_run_holds_the_recipe_and_every_metric_with_its_context(tracked_run):
    repo_dir, run_dir, metrics = tracked_run
    repo = index_runs(repo_dir)
    aim_run = repo.get_run(metrics["aim_run_hash"])
    assert aim_run is not None and aim_run.experiment == "digits_dt"
    assert aim_run["hparams"] == tomli.loads((run_dir / "recipe.toml").read_text())
    assert (run_dir / "aim_run.txt").read_text().strip() == metrics["aim_run_hash"]

    series = {}
    for metric in aim_run.metrics():
        series.setdefault(metric.name, []).append((metric.context.to_dict(), values_by_step(metric)))
    assert set(series) >= {
        "loss",
        "accuracy",
        "chain_accuracy",
        "alpha_bar",
        "log_snr",
        "examples_per_second",
        "peak_memory_bytes",
        "image_accuracy",
        "readout_gap",
        "block_passes",
        "flops",
    }
    # how much each block reads the image: one series per block, equal to metrics.json's
    image = {c["block"]: v for c, v in series["image_accuracy"]}
    assert sorted(image) == [1, 2, 3, 4]
    assert image[2] == pytest.approx([r["image_accuracy"][1] for r in metrics["history"]])
    loss_contexts = {(c["block"], c["term"]) for c, _ in series["loss"]}
    assert loss_contexts == {(b, term) for b in (1, 2, 3, 4) for term in ("ce", "kl", "denoise")}  # b sorts as a number
    assert all(c["subset"] == "train" for c, _ in series["loss"])
    assert aim_run.name == run_dir.name  # listed by its run directory, not by hash
    # The KL of fixed one-hot labels carries no gradient: tracked at the first epoch only.
    assert {len(v) for c, v in series["loss"] if c["term"] == "kl"} == {1}
    assert {len(v) for c, v in series["loss"] if c["term"] != "kl"} == {len(metrics["history"])}
    # Values equal what metrics.json holds.
    history = metrics["history"]
    block2_denoise = next(v for c, v in series["loss"] if c["block"] == 2 and c["term"] == "denoise")
    assert block2_denoise == pytest.approx([r["loss_per_unit"]["block2"]["denoise"] for r in history])
    accuracy = {c["subset"]: v for c, v in series["accuracy"] if "read_out" not in c}
    assert accuracy["test"] == pytest.approx([r["test_accuracy"] for r in history])
    assert accuracy["train"] == pytest.approx([r["train_accuracy"] for r in history])
    # The read-out gap: the nearest class embedding of the head's state, and that minus the head.
    (nearest,) = [v for c, v in series["accuracy"] if c.get("read_out") == "nearest_embedding"]
    assert nearest == pytest.approx([r["nearest_embedding_accuracy"] for r in history])
    ((_, gap),) = series["readout_gap"]
    assert gap == pytest.approx([r["nearest_embedding_accuracy"] - r["test_accuracy"] for r in history])
    ((_, passes),) = series["block_passes"]
    assert passes == pytest.approx([r["block_passes"] for r in history]) and passes[-1] == metrics["train_block_passes"]
    chain = {c["epoch"]: v for c, v in series["chain_accuracy"]}
    assert chain[3] == pytest.approx([value for _, value in history[-1]["chain_accuracy"]])
    assert chain[3][-1] == pytest.approx(metrics["test_accuracy"])  # the chain ends at the prediction
    # The fixed cosine schedule is logged once, increasing from ~0 to ~1.
    ((schedule_context, alpha_bar),) = series["alpha_bar"]
    assert schedule_context == {"subset": "schedule", "epoch": 0}
    assert alpha_bar[0] < 1e-3 and alpha_bar[-1] > 0.999 and all(a < b for a, b in zip(alpha_bar, alpha_bar[1:]))


@pytest.mark.slow
def test_learnable_schedule_and_prototypes_are_tracked_as_they_change(registry, tmp_path):
    overrides = [
        "train.epochs=2",
        "data.subset=200",
        "variant.steps=4",
        "eval.train_subset=50",
        "model.embedding.name=prototype",
        "tracker.name=aim",
        f'tracker.repo="{tmp_path / "aim"}"',
    ]
    _, metrics = run(REPO / "recipes" / "digits_ct.toml", registry, overrides=overrides, out_dir=tmp_path / "run")
    aim_run = index_runs(tmp_path / "aim").get_run(metrics["aim_run_hash"])
    epochs = sorted(m.context.to_dict()["epoch"] for m in aim_run.metrics() if m.name == "alpha_bar")
    assert epochs == [0, 1, 2]  # start, then after every epoch: the γ network trains
    from aim.storage.context import Context

    for when in ("start", "end"):  # the class embeddings as images, as in the paper's Figure 2
        sequence = aim_run.get_image_sequence("class_embeddings", Context({"when": when}))
        assert sequence is not None
        images, _epochs, _times = sequence.data.values_list()  # columns
        assert len(images) == 1 and images[0].to_pil_image().size == (
            10 * 9 + 1,
            8 + 2,
        )  # ten 8×8 classes in a row, 1 px apart


@pytest.mark.slow
def test_two_concurrent_runs_into_one_repo_both_arrive(tmp_path):
    repo_dir = tmp_path / "shared-aim"
    commands = [
        [
            sys.executable,
            "-m",
            "noprop_core.cli",
            "run",
            str(DIGITS),
            *[f"--set={o}" for o in SHORT],
            "--aim-repo",
            str(repo_dir),
            "--out",
            str(tmp_path / f"run{i}"),
            "--seed",
            str(i),
        ]
        for i in range(2)
    ]
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
    hashes = {json.loads((tmp_path / f"run{i}" / "metrics.json").read_text())["aim_run_hash"] for i in range(2)}
    repo = index_runs(repo_dir)
    assert len(hashes) == 2 and hashes <= {r.hash for r in repo.iter_runs()}
    for run_hash in hashes:
        assert any(m.name == "accuracy" for m in repo.get_run(run_hash).metrics())


def test_an_unopenable_repo_warns_and_training_goes_on(registry, tmp_path, capfd):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the repository should be")
    overrides = [
        "train.epochs=1",
        "data.subset=100",
        "variant.timesteps=2",
        "tracker.name=aim",
        f'tracker.repo="{blocker}"',
    ]
    run_dir, metrics = run(DIGITS, registry, overrides=overrides, out_dir=tmp_path / "run")
    assert "noprop: warning: Aim open failed" in capfd.readouterr().err  # from the tracker's own process
    assert metrics["aim_run_hash"] is None and metrics["test_accuracy"] is not None
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_completed"] == 1


@pytest.mark.slow
def test_report_compares_with_the_paper_and_plots(registry, mnist_root, tracked_run, tmp_path, monkeypatch):
    from noprop_core.cli.main import main

    monkeypatch.setenv("NOPROP_DATA", str(mnist_root))
    mnist_dir, mnist_metrics = run(
        REPO / "recipes" / "mnist_dt.toml",
        registry,
        out_dir=tmp_path / "mnist",
        smoke=True,
        overrides=["tracker.name=none"],
    )
    _, digits_dir, _ = tracked_run
    output = tmp_path / "report.md"
    with open(output, "w") as handle, pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", handle)
        assert main(["report", "--markdown", "--plot", str(tmp_path / "plots"), str(mnist_dir), str(digits_dir)]) == 0
    lines = output.read_text().splitlines()
    assert lines[0].startswith("| run | dataset | variant | embedding | backbone | epochs | n | test % |")
    mnist_row = next(line for line in lines if line.startswith("| mnist |"))
    cells = [cell.strip() for cell in mnist_row.strip("|").split("|")]
    assert cells[1:6] == ["mnist", "dt", "onehot", "cnn", "1/100"] and cells[11] == "99.47 ± 0.05"
    # A smoke run is not the paper's budget: no Δ, a footnote says why.
    assert cells[12] == "[1]" and cells[13] == ""
    assert any(line.startswith("[1] mnist: no Δ: tested on the first") for line in lines), lines
    digits_row = lines[3]  # header, rule, mnist, digits
    assert digits_row.rstrip().endswith("|  |  |  |")  # no paper configuration for digits
    for name in ("accuracy.png", "chain_accuracy.png", "schedule.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_report_on_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    from noprop_core.cli.main import main

    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [  # one line for one fact, the reason in it
        f"noprop: error: report: no run to report among {tmp_path} ({tmp_path}: not a run directory "
        "(needs metrics.json and recipe.toml))",
    ]


def test_the_suite_keeps_aim_out_of_the_working_directory():
    assert os.environ.get("NOPROP_AIM_REPO")  # the suite never writes .aim into the working directory


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_json(url: str, timeout: float) -> dict:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stop_process_group(process: subprocess.Popen) -> None:
    """`aim up` starts uvicorn as a child: stop the whole group, then make sure it is gone."""
    import signal
    import time

    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    raise AssertionError("processes of `aim up` survived SIGKILL")


@pytest.fixture(scope="module")
def aim_server(tracked_run):
    """`aim up` serving the tracked run's repository; yields its base URL."""
    import shutil
    from pathlib import Path

    repo_dir, _, metrics = tracked_run
    port = free_port()
    aim = shutil.which("aim") or str(Path(sys.executable).parent / "aim")
    server = subprocess.Popen(
        [aim, "up", "--repo", str(repo_dir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_json(f"{base}/api/runs/{metrics['aim_run_hash']}/info/", timeout=90)
        yield base
    finally:
        stop_process_group(server)


def open_aim(base: str):
    """A headless browser on the Aim UI (skips without Chromium), its community pop-up marked seen."""
    from browser import Browser, find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium); the HTTP checks passed, no screenshot"
        )
    browser = Browser(chromium)
    browser.open(base)
    browser.evaluate("localStorage.setItem('communityPopupSeen', 'true')")  # it would cover the charts
    return browser


def keep_screenshot(shot) -> None:
    """NOPROP_SCREENSHOT_DIR=docs refreshes the screenshots of docs/tracking.md."""
    import shutil
    from pathlib import Path

    if os.environ.get("NOPROP_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["NOPROP_SCREENSHOT_DIR"]) / shot.name)


@pytest.mark.slow
def test_aim_up_serves_the_run_and_the_dashboard_renders(tracked_run, aim_server, tmp_path):
    _, _, metrics = tracked_run
    info = wait_for_json(f"{aim_server}/api/runs/{metrics['aim_run_hash']}/info/", timeout=30)
    assert info["params"]["hparams"]["variant"]["name"] == "dt"
    assert info["props"]["experiment"]["name"] == "digits_dt"
    shot = tmp_path / "aim-dashboard.png"
    with open_aim(aim_server) as browser:
        browser.open(f"{aim_server}/runs/{metrics['aim_run_hash']}/metrics")
        browser.wait_for("document.body.innerText.includes('subset=\"test\"')")  # the accuracy charts' labels
        data = browser.screenshot(shot)
    assert data.startswith(b"\x89PNG") and len(data) > 30_000  # a rendered page, not a blank one
    keep_screenshot(shot)


def readme_explorer_link() -> str:
    import re

    links = re.findall(r"\(?(http://127\.0\.0\.1:43800/metrics\?[^)\s]+)", (REPO / "docs" / "tracking.md").read_text())
    assert len(set(links)) == 1, f"docs/tracking.md should hold one explorer link, found {len(set(links))}"
    return links[0]


def test_readme_explorer_link_is_the_loss_view():
    from urllib.parse import parse_qs, urlsplit

    from plugins.trackers.aim_tracker.explorer import decode_aim64, loss_explorer_url

    link = readme_explorer_link()
    assert link == loss_explorer_url()
    state = {key: decode_aim64(value) for key, (value,) in parse_qs(urlsplit(link).query).items()}
    assert state["select"]["advancedMode"] is True
    assert state["select"]["advancedQuery"] == 'metric.name == "loss" and metric.context.subset == "train"'
    assert state["grouping"]["chart"] == ["context.term"] and state["grouping"]["color"] == ["context.block"]
    assert state["chart"]["axesScaleType"]["yAxis"] == "log" and state["chart"]["alignmentConfig"]["type"] == "epoch"


@pytest.mark.slow
def test_readme_explorer_link_opens_the_per_block_loss_comparison(tracked_run, aim_server, tmp_path):
    """docs/tracking.md's link, pointed at this server, draws one chart per term, one line per block and term."""
    from plugins.trackers.aim_tracker.explorer import loss_explorer_url

    _, _, metrics = tracked_run
    per_block = metrics["history"][-1]["loss_per_unit"]
    terms = sorted({term for terms in per_block.values() for term in terms})
    lines = sum(len(terms) for terms in per_block.values())
    assert readme_explorer_link() == loss_explorer_url()
    with open_aim(aim_server) as browser:
        browser.open(loss_explorer_url(aim_server))
        browser.wait_for(f"document.querySelectorAll('.LineChart .Line').length === {lines}")
        browser.wait_for("!document.querySelector('.ProgressBar')")  # the query's progress overlay gone
        text = browser.evaluate("document.body.innerText")
        for term in terms:
            assert f'metric.context.term="{term}"' in text  # each chart's title
        assert browser.evaluate("document.querySelectorAll('.LineChart').length") == len(terms)
        assert "Epochs" in text  # the x axis: epoch, as the link asks
        shot = tmp_path / "aim-loss-explorer.png"
        data = browser.screenshot(shot)
    assert data.startswith(b"\x89PNG") and len(data) > 30_000
    keep_screenshot(shot)


@pytest.mark.slow
def test_a_seed_groups_aim_runs_share_a_group_hparam(tmp_path):
    from noprop_core.cli.main import main

    overrides = [*SHORT, "train.epochs=1", "tracker.name=aim", f'tracker.repo="{tmp_path / "aimrepo"}"']
    sets = [argument for override in overrides for argument in ("--set", override)]
    assert main(["run", str(DIGITS), "--seeds", "3", "4", *sets, "--out", str(tmp_path / "group")]) == 0
    repo = index_runs(tmp_path / "aimrepo")
    hashes = [
        json.loads((tmp_path / "group" / f"seed-{s}" / "metrics.json").read_text())["aim_run_hash"] for s in (3, 4)
    ]
    runs = [repo.get_run(run_hash) for run_hash in hashes]
    assert [r["hparams"]["group"] for r in runs] == ["group", "group"]
    assert [r["hparams"]["seed"] for r in runs] == [3, 4]


@pytest.mark.slow
def test_each_sweep_trial_is_an_aim_run_with_the_sweeps_name_and_its_parameters(tmp_path):
    """A dashboard query compares a sweep's trials: each Aim run's hparams hold the sweep's name
    (``group``, the sweep folder's name) and the resolved recipe with the trial's values."""
    from noprop_core.cli.main import main

    repo_dir = tmp_path / "aimrepo"
    settings = [
        "data.validation=287",
        "train.epochs=1",
        "train.max_batches=3",
        'tracker.name="aim"',
        f'tracker.repo="{repo_dir}"',
        'device="cpu"',
    ]
    sweep = tmp_path / "lr.toml"
    sweep.write_text(
        f'recipe = "digits_dt"\nset = {json.dumps(settings)}\nmethod = "random"\ntrials = 2\n\n'
        '[space]\n"train.lr" = { type = "log_float", low = 3e-4, high = 1e-2 }\n'
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "lr-sweep")]) == 0
    summary = json.loads((tmp_path / "lr-sweep" / "sweep.json").read_text())
    repo = index_runs(repo_dir)
    for trial in summary["trials"]:
        metrics = json.loads((tmp_path / "lr-sweep" / trial["run_dir"] / "metrics.json").read_text())
        hparams = repo.get_run(metrics["aim_run_hash"])["hparams"]
        assert hparams["group"] == "lr-sweep"
        assert hparams["train"]["lr"] == pytest.approx(trial["params"]["train.lr"])
