"""The grading pipeline, stage by stage: intake, preflight, execute, check, score, report; and the grade record."""
