"""What NoProp-DT and DiffusionBlocks share: T blocks, block t trained alone as unit ``block{t}``."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from noprop_core.model.variant import Variant


class BlockPerUnitVariant(Variant):
    """A variant whose units are its blocks, one each; ``set_blocks`` names them block1 … blockT."""

    blocks: nn.ModuleList

    def set_blocks(self, blocks: Iterable[nn.Module]) -> None:
        self.blocks = nn.ModuleList(blocks)
        self.units = [f"block{t}" for t in range(1, len(self.blocks) + 1)]

    def block_index(self, unit: str) -> int:
        return self.units.index(unit)

    def unit_parameters(self, unit: str) -> list[nn.Parameter]:
        return list(self.blocks[self.block_index(unit)].parameters())

    def unit_state(self, unit: str) -> list[Tensor]:
        block = self.blocks[self.block_index(unit)]
        return [*block.parameters(), *block.buffers()]

    def block_modules(self) -> list[nn.Module]:
        return list(self.blocks)
