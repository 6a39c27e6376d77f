"""The one exception type the package raises for a user's mistake or a missing prerequisite.

Its message is a single line that names the problem and the fix; the CLI prints it without a traceback.
"""


class SpladeError(Exception):
    """A problem the user can fix (bad input, missing file, wrong Java, mismatched index, …)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
