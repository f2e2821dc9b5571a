"""The documentation: README stays a front page, the site's home page is README, and the site
builds with every page and link checked (``mkdocs build --strict``, API reference included)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO

README = REPO / "README.md"
INDEX = REPO / "docs" / "index.md"
INDEX_HEADER = "<!-- generated from README.md by tests/test_docs.py; edit README.md -->\n"


def site_home_page() -> str:
    """README with its links into docs/ made relative to docs/ itself."""
    return INDEX_HEADER + README.read_text().replace("](docs/", "](")


def test_readme_is_a_front_page_and_the_site_home_is_readme():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README has {len(lines)} lines; details belong in docs/"
    assert "python -m pytest -q" in README.read_text()  # the test command .ci/run runs
    assert INDEX.read_text() == site_home_page(), "docs/index.md is stale: python tests/test_docs.py rewrites it"


def test_every_page_is_in_the_sites_navigation():
    config = (REPO / "mkdocs.yml").read_text()
    pages = sorted(path.name for path in (REPO / "docs").glob("*.md"))
    assert [page for page in pages if f": {page}" not in config] == []


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(REPO / ".venv" / "bin")) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is a dev dependency: pip install -e '.[dev]'")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(REPO / ".venv" / "bin") + ":/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "noprop_core.engine.api.train" in api and "Train" in api  # the reference came from the docstrings
    notebook = (tmp_path / "site" / "quickstart" / "index.html").read_text()
    assert "jp-Notebook" in notebook and "noprop.train" in notebook  # rendered by mkdocs-jupyter
    assert "engine-flow.png" in (tmp_path / "site" / "engine" / "index.html").read_text()  # the flow's picture


def test_the_navigation_follows_the_four_kinds_of_documentation():
    import yaml

    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    sections = [next(iter(item)) for item in nav]
    assert sections == ["Home", "Tutorials", "How-to guides", "Reference", "Explanation"]


@pytest.mark.slow
def test_the_run_folder_page_describes_every_key_a_run_writes(tmp_path):
    """Every key of a real run's metrics.json, of its history records and of its checkpoint is
    named on docs/run-folder.md (between backquotes)."""
    import json

    import torch

    import noprop_core as noprop

    run = noprop.train(
        "digits_dt",
        overrides=["train.epochs=1", "train.max_batches=2", "variant.timesteps=2", "tracker.name=none"],
        out=tmp_path / "run",
        progress=False,
    )
    page = (REPO / "docs" / "run-folder.md").read_text()
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    checkpoint = torch.load(run.run_dir / "checkpoint.pt", weights_only=True)
    keys = {*metrics, *metrics["history"][0], *checkpoint}
    assert sorted(key for key in keys if f"`{key}`" not in page) == []


if __name__ == "__main__":
    INDEX.write_text(site_home_page())
    print(f"wrote {INDEX}", file=sys.stderr)
