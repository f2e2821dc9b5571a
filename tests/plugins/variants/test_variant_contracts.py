"""The variant contract kit (noprop_core.testing.VariantContract) on every first-party variant:
each registered variant with its default config (generated from the registry, so a new variant
is checked without editing this file), and the configurations below."""

from __future__ import annotations

from noprop_core.plugin.manager import load_registry
from noprop_core.testing import VariantContract

for _name in load_registry(autoload=True).names("variant"):
    _entry = load_registry(autoload=True).get("variant", _name)
    if _entry.source.distribution == "noprop":  # first-party: third parties test their own
        globals()[f"TestDefault_{_name}"] = type(f"TestDefault_{_name}", (VariantContract,), {"name": _name})


class TestDT(VariantContract):
    name = "dt"
    config = {"timesteps": 3}


class TestDTStacked(VariantContract):
    name = "dt"
    config = {"timesteps": 3, "order": "simultaneous", "fused": True}


class TestCT(VariantContract):
    name = "ct"
    config = {"steps": 4}


class TestCTWithLearnableGammaAndRadialHead(VariantContract):
    name = "ct"
    config = {"steps": 4, "sampler": "heun"}
    parts = {**VariantContract.parts, "schedule": ("learnable_gamma", {}), "head": ("radial", {"sigma": 0.5})}


class TestFM(VariantContract):
    name = "fm"
    config = {"steps": 4}


class TestAdjoint(VariantContract):
    name = "adjoint"
    config = {"steps": 4}


class TestBackprop(VariantContract):
    name = "backprop"
    config = {"timesteps": 3}


class TestCTPredictingNoise(VariantContract):
    name = "ct"
    config = {"steps": 4, "target": "noise"}
    parts = {**VariantContract.parts, "schedule": ("learnable_gamma", {})}


class TestCTImportanceWithLearnedDim20(VariantContract):
    name = "ct"
    config = {"steps": 4, "target": "noise", "time_sampling": "importance"}
    parts = {
        **VariantContract.parts,
        "schedule": ("learnable_gamma", {"lr": 0.01}),
        "embedding": ("learned", {"dim": 20}),
    }


class TestDiffusionBlocks(VariantContract):
    name = "diffusion_blocks"
    config = {"blocks": 3}


class TestDiffusionBlocksMoreLevelsWithOverlapSequential(VariantContract):
    name = "diffusion_blocks"
    config = {"blocks": 2, "steps": 5, "overlap": 0.5, "order": "sequential"}
    parts = {**VariantContract.parts, "embedding": ("learned", {"dim": 7})}


class TestClassifier(VariantContract):
    name = "classifier"
