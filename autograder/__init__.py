"""Instructor-side tools for the course; never shipped to students.

One module per step of the pipeline, each using only the ones listed before it:

- `course`: where things are, and running nbgrader with the course's own config;
- `feedback`: feedback HTML that hides hidden tests (also imported by nbgrader_config.py);
- `release`: `source/` -> `release/` and the student bundle, checked for leaks;
- `intake`: whatever arrived -> nbgrader's `submitted/` layout, with receipts;
- `grade`: intake, gradebook, autograde, scores;
- `report`: grades CSV and the summary table;
- `demo`: the whole cycle on the sample class;
- `cli`: the command line.

Importing the package does nothing else: nbgrader imports `autograder.feedback` every
time it loads the course config.
"""
