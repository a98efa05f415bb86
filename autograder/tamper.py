"""Tamper signals: what a student's code did (or was written to do) to fool the checks.

Two sources that check each other: a static reading of the student's cells, done here
where their code cannot reach, and the signals the box reports after running them
(patched NumPy, IPython hooks, opened paths outside the workspace). Only a real attempt
is flagged: plain NumPy, plotting and printing never are.
"""
import ast
import re

from IPython.core.inputtransformer2 import TransformerManager

PATCHABLE_MODULES = {"np", "numpy", "builtins", "__builtins__", "sys", "gdlab", "checks"}
HOOK_NAMES = {"input_transformers_post": "an IPython input transformer",
              "input_transformers_cleanup": "an IPython input transformer",
              "input_transformer_manager": "an IPython input transformer",
              "ast_transformers": "an IPython AST transformer",
              "settrace": "a trace function", "setprofile": "a trace function",
              "addaudithook": "an audit hook", "meta_path": "an import hook",
              "path_hooks": "an import hook", "excepthook": "an exception hook",
              "custom_exceptions": "an exception hook", "events": "an IPython event callback"}
# Ways to reach the box's own reporting code from the student's code: its frames, the
# heap, its functions' insides (and, below, the descriptor it writes to).
REACHING_ATTRIBUTES = {"_getframe": "frame inspection", "f_back": "frame inspection",
                       "f_locals": "frame inspection", "f_globals": "frame inspection",
                       "tb_frame": "frame inspection", "gi_frame": "frame inspection",
                       "cr_frame": "frame inspection", "get_referrers": "a walk of the heap",
                       "get_referents": "a walk of the heap",
                       "get_objects": "a walk of the heap",
                       "__globals__": "a function's insides",
                       "__closure__": "a function's insides", "__code__": "a function's insides"}
REACHING_MODULES = {"ctypes": "raw memory access"}
# Frame inspection through `inspect` (its other functions, `signature` say, are honest).
INSPECT_FRAMES = {"currentframe", "getouterframes", "getinnerframes", "getframeinfo", "stack",
                  "trace"}
# os calls on raw file descriptors: how a cell would write or silence the box's own lines.
RAW_DESCRIPTORS = {"write", "writev", "pwrite", "pwritev", "dup", "dup2", "close",
                   "closerange", "fdopen", "sendfile", "splice"}
GRADER_MARKERS = ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING")
# Places in a course directory a student's code has no business reading (a URL is not one).
FOREIGN_PATH = re.compile(r"(^|/)(source|release|submitted|autograded|feedback)/|gradebook\.db"
                          r"|^/(root|work|srv|etc/shadow)\b")


def static_flags(sources):
    """Tamper attempts visible in the student's own code (a list of short reasons)."""
    found = []
    for source in sources:
        found += _scan(source)
    return sorted(set(found))


def _scan(source):
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):  # the cell will not run either: read its words
        return [f"{what} mentioned" for name, what in {**HOOK_NAMES, **REACHING_ATTRIBUTES}.items()
                if name in source]
    # Out of memory or of stack is no reading at all: it goes up, to the reading helper,
    # which makes it the submission's row (a score needs a static reading).
    found, os_names = [], _names_of(tree, "os")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                base = _base_name(target)
                if isinstance(target, (ast.Attribute, ast.Subscript)) and base in PATCHABLE_MODULES:
                    found.append(f"patches {ast.unparse(target)[:60]}")
                elif isinstance(target, ast.Attribute) and _base_name(target.value) in os_names:
                    # os.write, os.dup2...: the calls the box's reporting code makes
                    found.append(f"patches {ast.unparse(target)[:60]}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("setattr", "delattr") and node.args \
                and _base_name(node.args[0]) in PATCHABLE_MODULES:
            found.append(f"patches {ast.unparse(node.args[0])[:40]} with {node.func.id}")
        elif isinstance(node, ast.Attribute) and node.attr in HOOK_NAMES:
            found.append(f"installs {HOOK_NAMES[node.attr]}")
        elif isinstance(node, ast.Attribute) and node.attr in REACHING_ATTRIBUTES:
            found.append(f"uses {REACHING_ATTRIBUTES[node.attr]}")
        elif isinstance(node, ast.Attribute) and node.attr in RAW_DESCRIPTORS \
                and _base_name(node) in os_names:
            found.append(f"uses raw file descriptors (os.{node.attr})")
        elif isinstance(node, ast.Attribute) and node.attr in INSPECT_FRAMES \
                and _base_name(node) in _names_of(tree, "inspect"):
            found.append("uses frame inspection")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "open" and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, int):
            found.append("uses raw file descriptors (open of a number)")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            for name in names:
                if name.split(".")[0] in REACHING_MODULES:
                    found.append(f"uses {REACHING_MODULES[name.split('.')[0]]}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "setattr", "delattr") and len(node.args) > 1 \
                and not isinstance(node.args[1], ast.Constant) \
                and _is_guarded(node.args[0], reading=node.func.id == "getattr"):
            found.append(f"reaches into {ast.unparse(node.args[0])[:40]} by a computed name")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(marker in node.value for marker in GRADER_MARKERS):
                found.append("checks whether it runs under the grader")
            elif FOREIGN_PATH.search(node.value) and "://" not in node.value:
                found.append(f"reaches for {node.value[:60]!r}, outside the workspace")
    return found


def _is_guarded(node, reading=False):
    """True for the shell (`get_ipython()`) or a module built from a string
    (`__import__('nu' + 'mpy')`), and, when it is written to, NumPy or the builtins too:
    things a computed attribute name hides a patch on (reading NumPy by name is honest)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in ("get_ipython", "__import__")
    return not reading and _base_name(node) in PATCHABLE_MODULES


def _names_of(tree, module):
    """The names `module` goes by in `tree`: its own, `import module as m`, and `m = module`."""
    names = {module}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname for alias in node.names if alias.name == module and alias.asname}
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) \
                and node.value.id in names:
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return names


def _base_name(node):
    """The name at the root of `a.b[c].d`, or None."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


# What the box reports that an honest notebook may also do (`!pip`, `platform.platform()`).
HARMLESS_SIGNALS = ("started a process", "started a program", "refused system call")


def classify(signals):
    """Split the box's signals into (attempts, harmless notes)."""
    harmless = [s for s in signals if s.startswith(HARMLESS_SIGNALS)]
    return [s for s in signals if s not in harmless], harmless


def flags(static, dynamic):
    """Every tamper reason as one flag each, static first, as text any file or terminal takes
    (a path the student opened may hold a lone surrogate, which UTF-8 cannot encode)."""
    return [f"tamper attempt: {reason}".encode("utf-8", "backslashreplace").decode("utf-8")
            for reason in list(static) + list(dynamic)]
