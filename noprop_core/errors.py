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


# sysexits' EX_TEMPFAIL: "stopped with a checkpoint; start the same job again". Launchers requeue
# a job that exits with it (the `local` launcher itself, `slurm` through submitit).
REQUEUE_EXIT_CODE = 75


class RunPreempted(RunInterrupted):
    """Training was stopped by a preemption or time-limit signal (SIGUSR1 or SIGUSR2, as Slurm
    sends them) after a checkpoint was written: the job is to be started again, and resumes."""

    exit_code = REQUEUE_EXIT_CODE


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
