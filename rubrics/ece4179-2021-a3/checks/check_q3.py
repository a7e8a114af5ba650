"""Question 3: occlusion sensitivity, against the grader's own computation on a small network
and image of its own (the shared check of ``autograder.checks.occlusion``)."""

import pytest

from autograder.checks.occlusion import expect_heatmaps


@pytest.mark.item("3a")
def test_heatmaps_match(nb, tolerance):
    expect_heatmaps(nb, tol=tolerance, function="occlusion_sensitivity")
