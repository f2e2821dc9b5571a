"""What plugins declare for the core to use instead of their names: how listings name a data set
or an embedding, and whether a tracker records anything (the core then skips isolating it)."""

from __future__ import annotations

from noprop_plugins.datasets.digits import DigitsConfig
from noprop_plugins.datasets.medmnist_sets import MedMnistConfig
from noprop_plugins.datasets.torchvision_sets import TorchvisionConfig
from noprop_plugins.embeddings.learned import LearnedConfig
from noprop_plugins.embeddings.onehot import OneHotConfig
from noprop_plugins.trackers.aim_tracker import AimConfig
from noprop_plugins.trackers.none import NoTrackerConfig


def test_data_sets_and_embeddings_name_their_listing_rows():
    assert TorchvisionConfig(name="torchvision", dataset="FashionMNIST").display_name() == "FashionMNIST"
    assert MedMnistConfig(name="medmnist", flag="bloodmnist").display_name() == "bloodmnist"
    assert DigitsConfig(name="digits").display_name() == "digits"
    assert LearnedConfig(name="learned", dim=32).display_name() == "learned 32"
    assert OneHotConfig(name="onehot").display_name() == "onehot"


def test_only_the_none_tracker_records_nothing():
    assert NoTrackerConfig(name="none").records_nothing
    assert not AimConfig(name="aim").records_nothing
