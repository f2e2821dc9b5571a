"""`vit`: a small vision transformer (Dosovitskiy et al. 2021) as the image encoder of a NoProp block.

The image is cut into square patches of ``patch_size`` pixels, each embedded linearly to
``width`` features, plus a learned position embedding; ``depth`` pre-norm transformer layers
(multi-head self-attention with ``heads`` heads, then an MLP of ``mlp_ratio`` × width with
GELU, each around a residual connection) follow, and the final layer norm's output is averaged
over the patches. The rest of the block — label path, time path, fusion, logits — is the
paper's Figure 6 block (``noprop_core.paper_block``), so every variant can use it.

``label_input`` says where the noisy label z enters:

- ``"path"`` (default): the paper block's label path, after the image encoder.
- ``"token"``: the ViT is the whole block; z (a linear map to ``width``, plus the time t's
  sinusoidal embedding through a linear layer for continuous-time blocks) is a token beside a
  learned [CLS] token and the patches; [CLS]'s final state, through a linear layer, is the
  block's output (logits, or a vector of ``output_dim`` values).
- ``"cls"``: DiffusionBlocks' reference ViT (a DiT, arXiv:2506.14202 App. E.1 and its code): z
  is the [CLS] token itself (a linear map when d ≠ width), every layer is conditioned on the
  time input by adaLN-Zero (shift, scale and gate of attention and MLP from SiLU(MLP(sinusoid)),
  starting as the identity), and the block's output is [CLS] after the final layer norm. The
  patch and position embeddings, the time embedder and the final norm belong to the variant's
  ``SharedParts`` when it has them (DiffusionBlocks does): the blocks are the layers, cut out of
  one ViT. The time input t enters as the sinusoid of ``TIME_SCALE``·t, as in every block.

Attention is written out with ``scaled_dot_product_attention`` rather than through
``nn.TransformerEncoderLayer``, whose inference fast path cannot run under ``vmap`` (stacked
DT training vmaps whole blocks). Under vmap on CPU, PyTorch runs the attention kernel block by
block (it warns so): the same result, without the batching speed-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import BackboneConfig, at_least, between, hookimpl, one_of

LABEL_INPUTS = ("path", "token", "cls")

if TYPE_CHECKING:
    from noprop_core import BlockSpec


@attrs.frozen(kw_only=True)
class ViTConfig(BackboneConfig):
    patch_size: int = attrs.field(default=4, validator=at_least(1))
    width: int = attrs.field(default=128, validator=at_least(1))
    depth: int = attrs.field(default=4, validator=at_least(1))
    heads: int = attrs.field(default=4, validator=at_least(1))
    mlp_ratio: int = attrs.field(default=2, validator=at_least(1))
    dropout: float = attrs.field(default=0.1, validator=between(0.0, 0.9))
    attention_dropout: float = attrs.field(default=0.0, validator=between(0.0, 0.9))  # on the attention weights
    label_input: str = attrs.field(default="path", validator=one_of(*LABEL_INPUTS))  # where z enters (above)

    def paper_label(self) -> str:
        where = {"path": "", "token": ", label token", "cls": ", label as [CLS], adaLN-Zero"}[self.label_input]
        return f"ViT (depth {self.depth}, width {self.width}, {self.heads} heads, patch {self.patch_size}{where})"


def build(config: ViTConfig, spec: BlockSpec):
    from .encoder import build as implementation  # torch: imported when the plugin is used

    return implementation(config, spec)


@hookimpl
def noprop_register_backbones(registry) -> None:
    registry.add(
        "vit", build, config=ViTConfig, description="small vision transformer image encoder in the paper's block"
    )
