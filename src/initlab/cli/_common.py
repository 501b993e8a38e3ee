"""Helpers shared by the CLI verbs: JSON output, shape parsing, the rich console, and the one
rule for the paths the CLI writes.

The output-path rule (every ``--save``, ``--plot`` and ``--out``):

* the path must not be empty (``--plot ""`` would write a hidden ``.png``);
* its parent folder must exist and be a folder: initlab never creates folders, except the report's
  own ``--out`` folder itself;
* a file path must not be an existing folder; it ends with the format's extension (``.npy``,
  ``.png``), which is added when the name has none (``--save w`` writes and prints ``w.npy``);
  another extension is refused;
* files are written atomically (a temporary file beside the target, then a rename), and a write
  that fails is one line naming the option.
"""


from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from initlab._json import to_jsonable

#: parameters of parametric activations, as ``--param`` names them (``initlab gain``, ``initlab theory``)
PARAM_OPTIONS = {"negative_slope": "--param", "alpha": "--param", "param": "--param"}

__all__ = ["emit_json", "parse_shape", "parse_int_list", "to_jsonable", "console", "option_names", "output_file",
           "output_folder", "write_file", "as_option", "PARAM_OPTIONS", "load_npy"]


def console() -> Any:
    """A rich Console on stdout (imported lazily)."""
    from rich.console import Console

    return Console()


def emit_json(obj: Any) -> None:
    """Print ``obj`` as strict JSON on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def parse_shape(text: str, *, name: str = "--shape") -> tuple[int, ...]:
    """Parse ``"300x500"`` (or ``"64,3,3,3"``) into a tuple of non-negative ints.

    >>> parse_shape("300x500")
    (300, 500)
    """
    parts = text.replace(",", "x").lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
        if not text.strip():
            raise ValueError
    except ValueError:
        raise ValueError(f"The {name!r} option must look like 300x500 (non-negative ints); got {text!r}.") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"The {name!r} option must have non-negative sizes; got {text!r}.")
    return dims


def parse_int_list(text: str, *, name: str) -> list[int]:
    """Parse ``"2,12,6,1"`` into ``[2, 12, 6, 1]`` (positive ints).

    >>> parse_int_list("2,12,6,1", name="--layers")
    [2, 12, 6, 1]
    """
    try:
        vals = [int(p) for p in text.split(",")]
    except ValueError:
        raise ValueError(f"The {name!r} option must be comma-separated positive ints like 2,12,6,1 "
                         f"(no empty items); got {text!r}.") from None
    if len(vals) < 2 or any(v <= 0 for v in vals):
        raise ValueError(f"The {name!r} option must be at least two comma-separated positive ints; got {text!r}.")
    return vals


@contextlib.contextmanager
def as_option(option: str, value: Any, pyname: str | None = None) -> Iterator[None]:
    """Re-raise a library ValueError/TypeError so that it names the CLI option, not the Python
    argument: ``The 'activation' argument ...`` becomes ``The '--activation' option ...``;
    any other message is prefixed with the option and the value given."""
    try:
        yield
    except (ValueError, TypeError) as e:
        msg = str(e)
        head = f"The {pyname!r} argument" if pyname else None
        if msg.startswith(f"The {option!r} option"):
            pass
        elif head and msg.startswith(head):
            msg = f"The {option!r} option" + msg[len(head):]
        else:
            msg = f"The {option!r} option got {value!r}: {msg}"
        raise ValueError(msg) from None


@contextlib.contextmanager
def option_names(mapping: dict[str, str]) -> Iterator[None]:
    """Re-word library errors for the command line: "The 'seed' argument" becomes "The '--seed'
    option" for each ``{python_argument: cli_option}`` in ``mapping``.

    >>> with option_names({"out_dir": "--out"}):
    ...     raise ValueError("The 'out_dir' argument must be a folder; got 'x'.")
    Traceback (most recent call last):
    ...
    ValueError: The '--out' option must be a folder; got 'x'.
    """
    try:
        yield
    except (ValueError, TypeError) as e:
        msg = str(e)
        new = msg
        for arg, opt in mapping.items():
            new = new.replace(f"The {arg!r} argument", f"The {opt!r} option")
        if new == msg:
            raise
        raise type(e)(new) from None


def output_file(text: str, option: str, suffix: str) -> Path:
    """The path a CLI option writes a file to, checked by the module's output-path rule: ValueError
    naming the option. ``suffix`` (``".npy"``, ``".png"``) is added to a name without extension.

    >>> str(output_file("weights", "--save", ".npy"))
    'weights.npy'
    >>> output_file("", "--plot", ".png")
    Traceback (most recent call last):
    ...
    ValueError: The '--plot' option must name a .png file; got ''.
    """
    if not text.strip() or text.strip() in (".", "..") or text.endswith(("/", os.sep)):
        raise ValueError(f"The {option!r} option must name a {suffix} file; got {text!r}.")
    path = Path(text).expanduser()
    if path.name.lower() == suffix:
        raise ValueError(f"The {option!r} option must name a {suffix} file, not only the extension; got {text!r}.")
    if path.suffix == "":
        path = path.with_name(path.name + suffix)
    elif path.suffix.lower() != suffix:
        raise ValueError(f"The {option!r} option must be a {suffix} file (a name without extension gets {suffix}); "
                         f"got {text!r}.")
    _check_parent(path, option, text)
    if path.is_dir():
        raise ValueError(f"The {option!r} option must name a file; {str(path)!r} is a folder.")
    return path


def output_folder(text: str, option: str) -> Path:
    """The folder a CLI option writes into (the report's ``--out``): not empty, inside an existing
    folder (only the folder itself is created), not a file. ValueError naming the option.

    >>> output_folder("", "--out")
    Traceback (most recent call last):
    ...
    ValueError: The '--out' option must name a folder; got ''.
    """
    if not text.strip():
        raise ValueError(f"The {option!r} option must name a folder; got {text!r}.")
    path = Path(text).expanduser()
    _check_parent(path, option, text)
    if path.exists() and not path.is_dir():
        raise ValueError(f"The {option!r} option must name a folder; {str(path)!r} is a file.")
    return path


def _check_parent(path: Path, option: str, text: str) -> None:
    parent = path.absolute().parent
    if not parent.exists():
        shown = str(path.parent)
        raise ValueError(f"The {option!r} option must be inside an existing folder; {shown!r} does not exist "
                         f"(initlab does not create folders: make it first); got {text!r}.")
    if not parent.is_dir():
        raise ValueError(f"The {option!r} option must be inside a folder; {str(path.parent)!r} is a file; got {text!r}.")


def write_file(path: Path, option: str, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp)`` to write a temporary file beside ``path`` (same extension), then rename it
    onto ``path``: a reader never sees a half-written file, and an interrupted write leaves the old
    one. An OSError becomes a ValueError naming the option; the temporary file is removed."""
    from initlab._io import atomic_write

    try:
        atomic_write(path, write)
    except OSError as e:
        raise ValueError(f"The {option!r} option could not be written to {str(path)!r}: {e.strerror or e}.") from None


def load_npy(path: str, option: str) -> Any:
    """The array in a ``.npy`` file given to a CLI option, loaded without pickle; ValueError naming
    the option when the file is missing, empty, not in the .npy format (a text file renamed .npy),
    truncated or holding Python objects."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"The {option!r} file {path!r} does not exist.")
    try:
        with open(p, "rb") as fh:
            head = fh.read(6)
    except OSError as e:
        raise ValueError(f"The {option!r} file {path!r} cannot be read: {e.strerror or e}.") from None
    if not head:
        raise ValueError(f"The {option!r} file {path!r} is empty; expected an array saved with numpy.save.")
    if head != b"\x93NUMPY":
        raise ValueError(f"The {option!r} file {path!r} is not a valid .npy file (it lacks the NumPy header); "
                         "expected an array saved with numpy.save.")
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise ValueError(f"The {option!r} file {path!r} holds Python objects (an object array), which initlab "
                             "does not load; save a numeric array.") from None
        raise ValueError(f"The {option!r} file {path!r} is not a valid .npy file: {e}.") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"The {option!r} file {path!r} is not a valid .npy file (truncated?): {e}.") from None
    return arr


def load_callable(target: str, option: str) -> Any:
    """The callable named by ``package.module:name`` or ``path/to/file.py:name`` (a user's model
    factory); ValueError naming ``option`` for a bad name, a missing file or module, or an import
    that fails (the user's code: any exception becomes one line)."""
    import importlib
    import importlib.util

    mod_name, sep, attr = target.rpartition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"The {option!r} option must look like package.module:factory or path/file.py:factory; "
                         f"got {target!r}.")
    if mod_name.endswith(".py") or os.sep in mod_name or "/" in mod_name:
        path = os.path.abspath(mod_name)
        if not os.path.isfile(path):
            raise ValueError(f"The {option!r} option names file {mod_name!r}, which does not exist.")
        spec = importlib.util.spec_from_file_location(f"_initlab_model_{abs(hash(path))}", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"The {option!r} option names file {mod_name!r}, which is not a Python file.")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # the user's code: any failure becomes one line naming the option
            raise ValueError(f"The {option!r} file {mod_name!r} raised {type(e).__name__} on import: {e}") from None
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(mod_name)
        except ImportError as e:
            raise ValueError(f"The {option!r} option names module {mod_name!r}, which cannot be imported: {e}.") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ValueError(f"The {option!r} option names {attr!r}, which module {mod_name!r} has no callable of.")
    return factory
