"""How a head starts: the error lines of start_head."""

import pytest
import torch
from torch import nn

from noprop_core.model.heads import HEAD_INITS, start_head


def test_a_head_start_that_cannot_be_made_is_refused_naming_what_was_given():
    with pytest.raises(ValueError, match=r"^head_init = 'embedding' needs a Head with a linear layer, not Sequential$"):
        start_head(nn.Sequential(nn.Linear(3, 3)), torch.eye(3), "embedding")
    with pytest.raises(
        ValueError, match=rf"^unknown head start 'zeros'; expected one of {__import__('re').escape(str(HEAD_INITS))}$"
    ):
        start_head(nn.Linear(3, 3), torch.eye(3), "zeros")


def test_an_unknown_edm_weighting_is_refused_naming_the_choices():
    from noprop_core.diffusion.noise_levels import WEIGHTINGS, edm_weighted

    expected = rf"^unknown weighting 'mean'; expected one of {__import__('re').escape(str(WEIGHTINGS))}$"
    with pytest.raises(ValueError, match=expected):
        edm_weighted(torch.ones(3), torch.ones(3), "mean")
