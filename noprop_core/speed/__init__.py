"""Speed: the recipe's ``[speed]`` section and what it switches on (compile, channels-last,
autocast, CUDA graphs, torchrun), stacked blocks trained as one batched computation, and the
CPU allocator setting. Nothing here changes what is computed, only how fast."""
