"""What markers run and receive: batches, progress, the gradebook, feedback, Moodle's worksheet, Gradescope."""
