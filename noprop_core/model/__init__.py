"""What a NoProp model is made of: blocks and the paper's block (Figure 6), label embeddings,
heads, and the variant contract the engine trains through."""
