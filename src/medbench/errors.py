"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations


class MedbenchError(Exception):
    """An error the user can fix. The CLI prints ``problem: fix`` on one line and exits non-zero."""

    exit_code = 2

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.problem} — {self.fix}" if self.fix else self.problem
        return " ".join(text.split())
