"""`classifier`: an ordinary image classifier trained end to end with cross-entropy.

One block whose label input is held at zero (it carries nothing); its logits are the
prediction. With the ViT backbone and ``label_input = "token"`` this is a plain ViT, the
back-propagation baseline of DiffusionBlocks' Table 1 (its 12 layers in one block). The head
and the label embedding are not used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import VariantConfig, hookimpl

if TYPE_CHECKING:
    from noprop_core import VariantParts


@attrs.frozen(kw_only=True)
class ClassifierConfig(VariantConfig):
    def model_parts(self) -> frozenset[str]:
        return frozenset({"backbone", "label_embedding"})  # no noise schedule, and the head is not used

    def paper_label(self) -> str:
        return "end-to-end classifier"


def build(config: ClassifierConfig, parts: VariantParts):
    from .model import build as implementation  # torch: imported when the plugin is used

    return implementation(config, parts)


@hookimpl
def noprop_register_variants(registry) -> None:
    registry.add(
        "classifier",
        build,
        config=ClassifierConfig,
        description="one block trained end to end with cross-entropy (a plain classifier)",
    )
