"""gdlab: the learner's toolbox for the gradient-descent course.

Data loading, plots and learning-rate widgets, built on the functions the learner writes.
It knows no answer: every function that needs the maths takes the learner's code as an
argument.
"""
__all__ = ["data", "plots", "widgets", "checks", "learner"]
