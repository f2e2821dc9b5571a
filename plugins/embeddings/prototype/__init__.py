"""`prototype`: a trainable W_Embed in pixel space, d = C·H·W (the paper's "prototype").

Init ``prototype`` (default): for each class, the training image whose median Euclidean
distance to the other images of its class is smallest (a medoid by the median). To stay fast
on large data sets it is computed on the first ``per_class_sample`` training images of each
class (default 512: on CIFAR-100 that is 100 distance matrices of 500 × 500). Inits
``orthogonal`` and ``random`` are as in `learned` (unit-norm rows) for comparison.
The `cnn` and `resnet*` backbones reshape such embeddings to images (Figure 6 caption).
"""

from __future__ import annotations

import attrs

from noprop_core import LabelEmbeddingConfig, at_least, hookimpl, one_of


@attrs.frozen(kw_only=True)
class PrototypeConfig(LabelEmbeddingConfig):
    init: str = attrs.field(default="prototype", validator=one_of("prototype", "orthogonal", "random"))
    per_class_sample: int = attrs.field(default=512, validator=at_least(2))
    # Rows keep their starting norm, only directions learn (TrainableEmbedding).
    fixed_norms: bool = False

    def paper_label(self) -> str | None:
        # Table 1's prototypes start from class images and change freely.
        return "prototype" if self.init == "prototype" and not self.fixed_norms else None


def build(config: PrototypeConfig, *, num_classes: int, image_shape, train_images, train_labels, **_context):
    from .embedding import build as implementation  # torch: imported when the plugin is used

    return implementation(
        config,
        num_classes=num_classes,
        image_shape=image_shape,
        train_images=train_images,
        train_labels=train_labels,
        **_context,
    )


@hookimpl
def noprop_register_label_embeddings(registry) -> None:
    registry.add(
        "prototype",
        build,
        config=PrototypeConfig,
        description="trainable, d = image size, init: per-class median medoid",
    )
