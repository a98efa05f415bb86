"""Text that came from a submission, made safe to store and to show.

A reason quotes what a student did (a path, a file name from an LMS, an error message), so
it may hold anything: half a character, a terminal escape that rewrites the line above, a
carriage return, a bidirectional override. `printable` is applied to every reason, flag
and student id before it reaches the printed table, the CSV, the JSONL log or the report.
"""
import unicodedata

# Control, format and line/paragraph separators: what a terminal, a spreadsheet or a
# browser would act on instead of showing.
UNSHOWN = ("Cc", "Cf", "Zl", "Zp", "Cs")


def plain_text(value):
    """`value` as text a UTF-8 file can hold (a lone surrogate from `print("\\ud800")` cannot)."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def printable(value):
    """`value` with every control, format and separator character written as its escape
    (`\\x1b`, `\\r`, `\\u202e`), so it shows as what it is and acts on nothing."""
    text = str(value)
    if text.isprintable():  # the common case, at C speed; spaces count as printable
        return text
    return "".join(_escape(c) if unicodedata.category(c) in UNSHOWN else c for c in text)


def _escape(char):
    code = ord(char)
    if char in "\n\r\t":
        return repr(char)[1:-1]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def exception_line(error):
    """The line a traceback ends with, `Type: message`: what went wrong, in one line."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def clip(text, limit):
    """`text` cut to about `limit` characters, keeping its start and its end (an error's
    last words say what went wrong)."""
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 2
    return f"{text[:keep]} ... {text[-keep:]}"
