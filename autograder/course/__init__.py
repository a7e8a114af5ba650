"""What a course defines: an assignment's rubric and folders, and what is made from them
for students (templates, the public bundle)."""
