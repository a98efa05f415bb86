"""nbgrader configuration for the gradient-descent course.

Run nbgrader (or `python -m autograder`) from this directory: it is the course root.
"""
c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "gd101"

# The shared how-to-work-this-notebook cell, written once.
c.IncludeHeaderFooter.header = "source/header.ipynb"

# Feedback shows each hidden check's verdict and points, never its source or traceback
# (nbgrader's default shows both: nbgrader issue 917).
from autograder.feedback import FEEDBACK_PREPROCESSORS  # noqa: E402

c.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS

# A notebook that loops forever must not hold the whole class up.
c.ExecutePreprocessor.timeout = 120

# Keep the grading terminal readable: the kernel's own log lines (an unencrypted-TCP warning
# on every start, an interrupt notice on shutdown) are not about the student's work, and
# anything the student's code prints is still captured in the notebook.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=CRITICAL"]
