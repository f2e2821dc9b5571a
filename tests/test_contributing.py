"""docs/contributing.md stays true: a new first-party variant needs exactly the files its "a
variant" row lists. In a copy of the repository, a throwaway variant is added with those files
and nothing else; the copy is installed into a folder of its own, and there the variant is
registered, a recipe naming it validates, and the contract kit (generated from the registry)
passes on it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

INIT = '''"""`throwaway`: a variant added by tests/test_contributing.py."""

import attrs

from noprop_core import VariantConfig, hookimpl


@attrs.frozen(kw_only=True)
class ThrowawayConfig(VariantConfig):
    def model_parts(self) -> frozenset[str]:
        return frozenset({"backbone", "label_embedding"})


def build(config, parts):
    from .model import build as implementation

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry) -> None:
    registry.add("throwaway", build, config=ThrowawayConfig, description="a one-block classifier")
'''

MODEL = """import torch
import torch.nn.functional as F

from noprop_core import BlockSpec, Variant


class Throwaway(Variant):
    units = ["block"]

    def __init__(self, config, parts):
        super().__init__()
        self.embedding = parts.embedding
        spec = BlockSpec(image_shape=parts.image_shape, embedding_dim=parts.embedding.dim, num_classes=parts.num_classes)
        self.block = parts.make_block(spec)

    def unit_parameters(self, unit):
        return list(self.block.parameters())

    def shared_parameters(self):
        return []

    def block_modules(self):
        return [self.block]

    def logits(self, images):
        return self.block(images, torch.zeros(len(images), self.embedding.dim, device=images.device))

    def losses(self, images, labels, unit):
        return {"ce": F.cross_entropy(self.logits(images), labels)}

    def trajectory(self, images, generator=None):
        logits = self.logits(images)
        return [torch.zeros_like(logits), logits]


def build(config, parts):
    return Throwaway(config, parts)
"""


def listed_files(name: str) -> list[str]:
    """The paths docs/contributing.md's "a variant" row lists, for a variant called ``name``."""
    row = next(
        line for line in (REPO / "docs" / "contributing.md").read_text().splitlines() if line.startswith("| a variant ")
    )
    touch = row.split("|")[2]
    return [path.replace("<name>", name) for path in re.findall(r"`([^`]+)`", touch)]


def copy_repository(target: Path) -> None:
    """The working tree's files as git sees them (committed or not), without ignored ones."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in listing.stdout.splitlines():
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.mark.slow
def test_a_new_variant_needs_only_the_files_the_contributor_page_lists(tmp_path):
    copy = tmp_path / "repo"
    copy_repository(copy)
    before = {path.relative_to(copy) for path in copy.rglob("*") if path.is_file()}
    (copy / "plugins/variants/throwaway").mkdir()
    (copy / "plugins/variants/throwaway/__init__.py").write_text(INIT)
    (copy / "plugins/variants/throwaway/model.py").write_text(MODEL)
    pyproject = (copy / "pyproject.toml").read_text()
    marker = "[project.entry-points.noprop]\n"
    (copy / "pyproject.toml").write_text(
        pyproject.replace(marker, marker + 'throwaway = "noprop_plugins.variants.throwaway"\n')
    )
    after = {path.relative_to(copy) for path in copy.rglob("*") if path.is_file()}
    changed = sorted(str(path) for path in after - before) + ["pyproject.toml"]
    assert sorted(changed) == sorted(listed_files("throwaway"))

    site = tmp_path / "site"
    install = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--target",
        str(site),
        str(copy),
    ]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": str(site), "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1"}

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *command], cwd=copy, env=env, capture_output=True, text=True, timeout=600
        )

    listing = run("-m", "noprop_core.cli", "plugins")
    assert "variant\tthrowaway\tnoprop" in listing.stdout, listing.stdout + listing.stderr
    (copy / "t.toml").write_text('extends = "noprop:digits_dt"\n[variant]\nname = "throwaway"\n')
    validated = run("-m", "noprop_core.cli", "validate", "t.toml")
    assert validated.returncode == 0, validated.stderr
    contract = run(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/plugins/variants/test_variant_contracts.py",
        "-k",
        "throwaway",
    )
    assert contract.returncode == 0 and " passed" in contract.stdout, contract.stdout[-3000:] + contract.stderr[-2000:]
