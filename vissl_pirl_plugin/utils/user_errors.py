"""The errors that report a mistake in what the user gave: a path, a file, a config value.

Each is raised with a message that says what is wrong and what to do. The command-line tools
print such an error in one line, without a traceback (``tools/command_line.py``); any other
exception is a bug and keeps its traceback. They derive from the built-in type a caller would
catch (``FileNotFoundError``, ``ValueError``) as well.
"""


class UserInputError(Exception):
    """A mistake in the user's input; the message names it and the fix."""


class MissingInputError(UserInputError, FileNotFoundError):
    """A file or folder the user named does not exist or holds nothing usable."""


class InvalidInputError(UserInputError, ValueError):
    """A file or value the user gave is not what the tool needs."""
