"""Student text made safe to store and show."""
from autograder.text import clip, exception_line, plain_text, printable


def test_printable_escapes_what_a_terminal_or_page_would_act_on():
    assert printable("ok: 9/9 graded, é, 李") == "ok: 9/9 graded, é, 李"
    assert printable("a\x1b[2K\rb\tc\nd") == "a\\x1b[2K\\rb\\tc\\nd"
    assert printable("x\u202ey\u2028z\u200b\ufeff") == "x\\u202ey\\u2028z\\u200b\\ufeff"
    assert printable("\ud800") == "\\ud800"


def test_plain_text_keeps_half_a_character_as_an_escape():
    assert plain_text("\ud800x") == "\\ud800x"


def test_a_clipped_reason_keeps_its_end():
    clipped = clip("Traceback (most recent call last): " + "x" * 500 + " ValueError: why", 80)
    assert len(clipped) <= 80 and clipped.endswith("ValueError: why")


def test_an_exception_in_one_line():
    assert exception_line(ModuleNotFoundError("No module named 'gdlab'")) == (
        "ModuleNotFoundError: No module named 'gdlab'")
    assert exception_line(KeyError()) == "KeyError"
