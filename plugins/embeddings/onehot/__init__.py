"""`onehot`: W_Embed = I (num_classes × num_classes), fixed."""

from __future__ import annotations

import attrs

from noprop_core import LabelEmbeddingConfig, hookimpl


@attrs.frozen(kw_only=True)
class OneHotConfig(LabelEmbeddingConfig):
    pass

    def paper_label(self) -> str:
        return "one-hot"


def build(config: OneHotConfig, *, num_classes: int, **_context):
    from .embedding import build as implementation  # torch: imported when the plugin is used

    return implementation(config, num_classes=num_classes, **_context)


@hookimpl
def noprop_register_label_embeddings(registry) -> None:
    registry.add("onehot", build, config=OneHotConfig, description="fixed identity, d = number of classes")
