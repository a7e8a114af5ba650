"""Question 6: occlusion sensitivity. The student's function runs on a small network and
image of the grader's, for several patch sizes and strides; the heatmaps must match the
grader's own computation (patch zeroed, softmax score of the unoccluded top class): the
shared check of ``autograder.checks.occlusion``."""

import pytest

from autograder.checks.occlusion import expect_heatmaps


@pytest.mark.item("6.1")
def test_heatmaps_match(nb, tolerance):
    expect_heatmaps(nb, tol=tolerance, function="occlusion_sensitivity")
