"""Error hints in command-line syntax: ``pass data_dir=<dir>`` becomes ``pass --data-dir <dir>``.

Library errors name Python keywords (``dtype='float32'``, ``data_dir=...``, ``min_item=...``);
:func:`cli_syntax` rewrites the hints it knows into the options of the command that failed,
so the advice can be typed as shown. Hints it does not know stay as they are.
"""

from __future__ import annotations

import re

from ..models import MODEL_REGISTRY

#: Keyword arguments of the data layer → the ``recae`` option that sets them.
DATA_FLAGS = {"data_dir": "--data-dir", "timestamp": "--timestamp-col", "rating": "--rating-col", "user": "--user-col",
              "item": "--item-col", "duplicates": "--duplicates", "min_user": "--min-user", "min_item": "--min-item",
              "sep": "--sep", "encoding": "--encoding"}
#: Keyword arguments that a command's own option sets, rewritten wherever they appear (the names are
#: unambiguous: "n_heldout 0.1 of 6 users ..., or a larger n_heldout").
COMMAND_FLAGS = {"fit": {"n_heldout": "--valid"}, "evaluate": {"n_heldout": "--heldout"}}
#: Names a command's own options set, rewritten where a message opens with them or hints ``name=value``
#: (elsewhere they are words: a refused setting's JSON, "the search space").
COMMAND_LEADS = {"tune": {"blend_trials": "--blend-trials", "random_state": "--seed", "study_name": "--study-name",
                          "max_epochs": "--max-epochs", "spaces": "--space", "storage": "--storage"},
                 "demo": {"random_state": "--seed"}, "image": {"random_state": "--seed"}, "recommend": {"n": "-n"}}
#: ImageAutoencoder settings that ``recae image fit`` takes as options of the same name (it has no --param).
IMAGE_FLAGS = ("arch", "latent_dim", "epochs", "batch_size", "lr", "loss", "noise", "noise_type", "patience")
#: Commands with their own ``--device`` option (elsewhere a device is a model's ``--param``).
DEVICE_COMMANDS = ("recommend", "image")
#: Commands that take model settings as ``--param NAME=VALUE``.
PARAM_COMMANDS = ("fit", "evaluate")

_HINT = re.compile(r"(?P<lead>\b(?:[Pp]ass|[Uu]se|[Ss]et|with|[Tt]ry|or|e\.g\.|raise)\s+)"
                   r"(?P<name>[a-z_][a-z0-9_]*)=(?P<value>'[^']*'|\"[^\"]*\"|<[^>]*>|[^\s,;)]+)")
_METHOD = re.compile(r"Interactions\.filter\((?P<name>min_user|min_item)=[^)]*\)")
_STEP = re.compile(r"filter\(min_user=(?P<u>\d+), min_item=(?P<i>\d+)\)")
_BUILD = re.compile(r"build it with Interactions\.from_pandas\([^)]*rating=[^)]*\)")
_MODEL = re.compile(r"\b(?P<cls>[A-Z][A-Za-z0-9]*)\((?P<name>[a-z_][a-z0-9_]*)=\.\.\.\)")
_BARE = re.compile(r"\b(?P<name>min_user|min_item|sep)\b(?= \(now| must be)")
#: A message that opens with the name of the setting it is about (``epochs must be ...``).
_LEAD = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)(?= (?:as a fraction )?must be)")
#: binarize's threshold, which --binarize sets, when the message is about it alone.
_THRESHOLD = re.compile(r"^threshold must be")


def model_params() -> set[str]:
    """Every hyper-parameter name of the models ``--model`` accepts (what ``--param`` sets)."""
    names: set[str] = set()
    for cls in MODEL_REGISTRY.values():
        try:
            names |= set(cls().get_params())
        except Exception:  # a model that cannot be built without arguments has no --param defaults to list
            continue
    return names


def _flag(name: str, command: str | None, params: set[str]) -> str | None:
    """The option of ``recae <command>`` that sets keyword ``name`` (None: the command has none)."""
    own = COMMAND_LEADS.get(command or "", {})
    if name in own:
        return own[name]
    if name in DATA_FLAGS:
        return DATA_FLAGS[name]
    if name == "device" and command in DEVICE_COMMANDS:
        return "--device"
    if command == "image" and name in IMAGE_FLAGS:
        return f"--{name.replace('_', '-')}"
    if name in params and command in PARAM_COMMANDS:
        return f"--param {name}"
    return None


def _option(name: str, value: str, command: str | None, params: set[str]) -> str | None:
    plain = value[1:-1] if value[:1] in "'\"" and value[-1:] == value[:1] else value
    if name == "download" and plain == "True":
        return "--download"
    if name == "sep" and plain == "\\t":  # a tab cannot be typed as \t after --sep; the option takes "tab"
        plain = "tab"
    flag = _flag(name, command, params)
    if flag is None:
        return None
    return f"{flag}={plain}" if flag.startswith("--param ") else f"{flag} {plain}"


def cli_syntax(message: str, command: str | None = None) -> str:
    """``message`` with the Python-keyword hints it knows written as options of ``recae <command>``."""
    params = model_params()
    message = _BUILD.sub("give --rating-col COLUMN and --explicit (recae fit)", message)
    message = _STEP.sub(lambda m: f"--min-user {m['u']} --min-item {m['i']}", message)
    message = _METHOD.sub(lambda m: f"{DATA_FLAGS[m['name']]} N", message)
    message = _BARE.sub(lambda m: DATA_FLAGS[m["name"]], message)
    message = _THRESHOLD.sub("--binarize must be", message)
    for name, flag in COMMAND_FLAGS.get(command or "", {}).items():
        message = re.sub(rf"\b{name}\b", flag, message)
    message = _LEAD.sub(lambda m: (_flag(m["name"], command, params) if m["name"] not in DATA_FLAGS else None)
                        or m["name"], message)
    message = _MODEL.sub(lambda m: f"--model {m['cls'].lower()} --param {m['name']}=..." if m["cls"] in MODEL_REGISTRY
                         else m.group(0), message)
    if message.startswith("--seed "):  # an option takes an integer, never None or a Generator
        message = message.replace("must be None, a non-negative integer or a numpy Generator",
                                  "must be a non-negative integer")

    def hint(m: re.Match) -> str:
        option = _option(m["name"], m["value"], command, params)
        return m.group(0) if option is None else m["lead"] + option

    return _HINT.sub(hint, message)
