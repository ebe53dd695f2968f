"""The pipeline's exceptions: each carries its data and becomes one line and an exit code at the CLI."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class ConfigError(PipelineError):
    """A params file or flag is wrong: ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class InputError(PipelineError):
    """An input folder or file the run needs is missing or unusable."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class AccountingError(PipelineError):
    """Inputs do not equal cleaned plus quarantined: something was lost or counted twice."""

    exit_code = 1

    def __init__(self, inputs: int, cleaned: int, quarantined: int) -> None:
        super().__init__(f"accounting failed: {inputs} inputs but {cleaned} cleaned + {quarantined} quarantined; report this as a bug with the raw folder")
        self.inputs, self.cleaned, self.quarantined = inputs, cleaned, quarantined


class OutputInvalid(PipelineError):
    """The outputs of a run break a rule of the documented schema; nothing was replaced."""

    exit_code = 1

    def __init__(self, file: str, rule: str, examples: list[str]) -> None:
        super().__init__(f"{file}: {rule} ({', '.join(examples[:3])}); the previous output was left in place, report this as a bug")
        self.file, self.rule, self.examples = file, rule, examples


class PatchRefused(PipelineError):
    """A cached rerun cannot patch the previous output (``reason`` says why); the runner
    catches it and does the whole second pass instead, so it never reaches the CLI."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
