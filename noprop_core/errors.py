"""Errors a user can act on. The CLI prints them as one line each and exits with status 2."""


class NopropError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 2

    def lines(self) -> list[str]:
        return [str(self)]


class RecipeError(NopropError):
    """Every problem found in one recipe, each as `file: key.path: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def lines(self) -> list[str]:
        return list(self.problems)


class PluginError(NopropError):
    """A plugin failed to import or register, or a name is unknown or taken twice."""


class RunInterrupted(NopropError):
    """Training was stopped by a signal after a checkpoint was written."""

    exit_code = 130


class DataUnavailable(NopropError):
    """A data set's files are absent and could not be fetched.

    ``image_shape`` and ``num_classes`` are set when the plugin knows them without the files, so
    ``noprop run --smoke`` can stand in synthetic data of the same shape.
    """

    def __init__(
        self, message: str, image_shape: tuple[int, int, int] | None = None, num_classes: int | None = None
    ) -> None:
        super().__init__(message)
        self.image_shape = image_shape
        self.num_classes = num_classes
