"""What a run keeps of each epoch (metrics.json's ``history``, the checkpoint, the tracker)."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.define
class EpochRecord:
    epoch: int
    loss: dict[str, float]
    loss_per_unit: dict[str, dict[str, float]]
    test_accuracy: float | None  # None on epochs without evaluation (eval.every)
    train_seconds: float
    train_accuracy: float | None = None  # on the first eval.train_subset examples, evaluated epochs only
    # [[step, test accuracy of the head read at z_step], …] along the inference chain, thinned
    chain_accuracy: list[list[float]] | None = None
    examples_per_second: float | None = None
    peak_memory_bytes: int | None = None
    diagnostics: dict[str, list[float]] | None = None  # Variant.diagnostics() after the epoch
    validation_accuracy: float | None = None  # evaluated epochs, when the data set holds a validation split
    # Test accuracy of each block from the image alone (Variant.blind_scores), evaluated epochs
    image_accuracy: list[float] | None = None
    # Test accuracy of the nearest class embedding to the state the prediction's head reads, and
    # the points the head loses against it (the read-out gap); variants with such a head only.
    nearest_embedding_accuracy: float | None = None
    readout_gap: float | None = None
    # Training compute up to the end of this epoch (``training.compute``): block passes (one
    # example through one trained block, forward and backward) and FLOPs (None: not all counted)
    block_passes: int | None = None
    flops: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def mean_over_units(per_unit: dict[str, dict[str, float]]) -> dict[str, float]:
    names = next(iter(per_unit.values())).keys()
    means = {name: sum(terms[name] for terms in per_unit.values()) / len(per_unit) for name in names}
    means["total"] = sum(means.values())
    return means
