"""docs/writing-a-plugin.md runs as written: its Python blocks, in order, are the example
package's plugin module, and that code registers a backbone that trains."""

from __future__ import annotations

import re
import types

import torch

from conftest import REPO
from noprop_core import BlockSpec, load_registry

TUTORIAL = REPO / "docs" / "writing-a-plugin.md"
EXAMPLE_MODULE = REPO / "examples" / "noprop-mlp-mixer" / "noprop_mlp_mixer" / "__init__.py"


def tutorial_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 4, "the tutorial lost its code"
    return "\n\n".join(blocks)


def test_the_tutorials_code_is_the_example_plugin_module():
    assert tutorial_code() == EXAMPLE_MODULE.read_text()


def test_the_tutorials_code_registers_a_backbone_that_trains(tmp_path):
    from noprop_core import train

    module = types.ModuleType("tutorial_mixer")
    exec(compile(tutorial_code(), str(TUTORIAL), "exec"), module.__dict__)  # noqa: S102 - our own document
    registry = load_registry([("tutorial_mixer", module)])
    entry = registry.get("backbone", "mlp_mixer")
    spec = BlockSpec(image_shape=(1, 8, 8), embedding_dim=10, num_classes=10)
    block = entry.factory(entry.config(name="mlp_mixer", patch_size=2, width=16), spec)
    assert block(torch.randn(3, 1, 8, 8), torch.randn(3, 10)).shape == (3, 10)

    overrides = [
        'model.backbone={name = "mlp_mixer", patch_size = 2, width = 16}',
        "train.epochs=1",
        "train.max_batches=3",
        "variant.timesteps=2",
        "tracker.name=none",
        "device=cpu",
    ]
    run = train(
        REPO / "recipes" / "digits_dt.toml",
        overrides=overrides,
        out=tmp_path / "run",
        registry=registry,
        progress=False,
    )
    assert run.metrics["backbone"] == "mlp_mixer" and run.metrics["epochs_completed"] == 1
