"""Rich progress bars shared by the commands: one bar for all units of work (runs, active
loops) and one for the steps (epochs, rounds) of the current one. Silent when disabled."""

from __future__ import annotations


class Bars:
    """``with Bars(enabled, total) as bars``: ``bars.start(name, steps)`` returns a callback
    ``(step, metrics)`` for the current unit; ``bars.done()`` advances the overall bar. The
    callback shows validation perplexity or accuracy when ``metrics`` has it, else test
    accuracy."""

    def __init__(self, enabled: bool, total: int, *, total_label: str = "all runs", console=None):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        self.progress = Progress(TextColumn("{task.description:<34}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
                                 console=console)
        self.overall = self.progress.add_task(total_label, total=total, info="")
        self.current = None

    def __enter__(self):
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)

    def start(self, name: str, steps: int):
        if not self.enabled:
            return None
        if self.current is not None:
            self.progress.remove_task(self.current)
        self.current = self.progress.add_task(name, total=steps, info="")

        def on_step(step, m):
            if "val_perplexity" in m:
                info = f"val perplexity {m['val_perplexity']:.1f}"
            elif "val_span_f1" in m:
                info = f"val span F1 {100 * m['val_span_f1']:.1f}%"
            else:
                key, short = (("val_accuracy", "val") if "val_accuracy" in m
                              else ("test_accuracy", "test"))
                info = f"{short} {100 * m[key]:.1f}%"
            self.progress.update(self.current, completed=step, info=info)
        return on_step

    def log(self, text: str) -> None:
        """A line above the bars (kept in the scrollback and in non-terminal logs)."""
        if self.enabled:
            self.progress.console.print(text, highlight=False)

    def done(self):
        if self.enabled:
            self.progress.advance(self.overall)
