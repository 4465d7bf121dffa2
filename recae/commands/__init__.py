"""The subcommands of ``recae``, one module each; :mod:`recae.cli` builds the parser and runs them.

Each module has an ``add_parser(subparsers)`` that registers its subcommand (options,
help and examples) and a ``cmd_<name>(args)`` handler that returns the exit code; recae
errors propagate to :func:`recae.cli.main`, which prints them. :mod:`.common` holds what
they share: the data options and ``--data`` loading, model names and ``--param``.
"""
