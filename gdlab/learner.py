"""Call the learner's functions and turn failures into a sentence instead of a traceback."""


class NotReady(Exception):
    """The learner's function is not written yet or raised: the message says which."""


def call(function, *args, name=None):
    """Return function(*args), or raise NotReady with a plain sentence explaining why not."""
    name = name or getattr(function, "__name__", "your function")
    try:
        return function(*args)
    except NotImplementedError:
        raise NotReady(f"`{name}` is not written yet: fill in its cell above, run it, "
                       "then run this cell again.") from None
    except Exception as exc:  # any learner error becomes a sentence, not a traceback
        raise NotReady(f"`{name}` raised {type(exc).__name__}: {exc}. "
                       "Fix it in its cell above, run that cell, then run this cell again.") from None
