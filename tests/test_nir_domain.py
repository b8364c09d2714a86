"""The colour-domain distance a NIR checkpoint carries and generate-nir reports."""

from __future__ import annotations

import numpy as np
import pytest

from geotool.nir.domain import BINS, TrainingDomain, distance, histogram


def test_distance_is_the_mean_wasserstein_shift_in_unit_scale():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.6, (3, 50_000))
    assert distance(histogram(x), histogram(x)) == 0
    shifted = distance(histogram(x + 0.1), histogram(x))
    assert shifted == pytest.approx(0.1, abs=1.5 / BINS)
    assert distance(histogram(x + 0.2), histogram(x)) > shifted  # farther colours, larger distance
    assert distance(histogram(x[:, :1000]), histogram(x)) < 0.01  # a sample of the same domain is near it


def test_training_domain_flags_inputs_beyond_its_spread_and_round_trips():
    rng = np.random.default_rng(1)
    scenes = [histogram(rng.normal(m, 0.05, (3, 20_000))) for m in (0.30, 0.33, 0.36)]
    domain = TrainingDomain.from_scenes(scenes)
    assert 0 < domain.spread < 0.05
    near, far = histogram(rng.normal(0.34, 0.05, (3, 5000))), histogram(rng.normal(0.6, 0.05, (3, 5000)))
    assert not domain.report(near)["outside"] and domain.report(far)["outside"]
    again = TrainingDomain.from_dict(domain.as_dict())
    assert again.report(far) == domain.report(far)
