"""Experiment trackers: ``train.log_with: [tensorboard, mlflow, csv]``.

Every training inside a run (each teacher, each pre-training stage, each student and seed) is
one tracker run named after its folder -- ``teacher`` (``teacher-1``, ... for the teachers of
further settings), ``teacher/<stage>`` -- or ``<setting>/<method>/seed<k>``. It
gets its configuration (the method's parameters, the seed, the training settings) once, then
one point per epoch -- ``train_loss``, ``val_accuracy`` and, for semi-supervised methods, the
pseudo-label precision, recall and coverage -- and the ``test_accuracy`` at the end. The
trackers are Accelerate's (:mod:`accelerate.tracking`) plus :class:`CSVTracker`; only the
main process logs. Where the logs go, under the run folder:

- ``tensorboard``: ``logs/tensorboard/<tracker run>/`` (``tensorboard --logdir RUN/logs``);
- ``mlflow``: the tracking URI the user configured (``MLFLOW_TRACKING_URI`` or
  ``mlflow.set_tracking_uri``), else ``sqlite:///RUN/logs/mlflow.db`` (``mlflow ui
  --backend-store-uri sqlite:///RUN/logs/mlflow.db``); the experiment is the recipe's name;
- ``csv``: ``logs/csv/<tracker run>.csv`` with columns ``step,name,value``.

A tracker whose package is missing is refused before training starts, naming the extra to
install (:func:`check_available`); nothing is skipped silently.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from accelerate.tracking import GeneralTracker

from .._util.atomic import atomic_write_text
from ..errors import MentorError

TRACKERS = ("tensorboard", "mlflow", "csv")
# tracker -> (modules it imports, the extra that installs them)
NEEDS = {"tensorboard": (("tensorboard",), "tensorboard"),
         "mlflow": (("mlflow", "sqlalchemy", "alembic"), "mlflow"),
         "csv": ((), None)}


def check_available(names: Sequence[str], field: str = "train.log_with") -> None:
    """Raise :class:`MentorError` naming the extra when a tracker's package is missing."""
    for name in names:
        if name not in NEEDS:
            raise MentorError(f"{field}: unknown tracker {name!r}; expected one of "
                              f"{', '.join(TRACKERS)}")
        modules, extra = NEEDS[name]
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            raise MentorError(
                f"{field}: tracker {name!r} needs the package(s) {', '.join(missing)}, which "
                f"are not installed; install them with pip install 'mentor[{extra}]'")


def _scalars(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of ``values`` (lists, None and NaN are not plotted)."""
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def flat_config(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``values`` flattened to ``a.b`` keys with bool/int/float/str values (lists as text),
    the types every tracker's hyper-parameter store accepts.

    >>> flat_config({"method": "kd", "train": {"lr": 0.003, "seeds": [0, 1]}, "augment": None})
    {'method': 'kd', 'train.lr': 0.003, 'train.seeds': '[0, 1]', 'augment': 'none'}
    """
    out: dict[str, Any] = {}
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, key + "."))
        elif v is None or isinstance(v, (bool, int, float, str)):
            out[key] = "none" if v is None else v
        else:
            out[key] = str(v)
    return out


class CSVTracker(GeneralTracker):
    """A tracker writing ``step,name,value`` rows to ``logs/csv/<run>.csv``.

    Registered with Accelerate's tracker interface (:class:`~accelerate.tracking
    .GeneralTracker`: ``start``, ``store_init_configuration``, ``log``, ``finish``). The file
    is rewritten atomically at each point, so a killed run leaves a complete file; a resumed
    run replaces the points from its first logged step on instead of repeating them.
    """

    name = "csv"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike):
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / f"{run_name}.csv"
        self.rows: list[tuple[int, str, float]] = []
        self._resumed = False

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # a resumed run: keep the earlier points
            with open(self.path, newline="") as f:
                self.rows = [(int(r["step"]), r["name"], float(r["value"]))
                             for r in csv.DictReader(f)]

    @property
    def tracker(self) -> Path:
        return self.path

    def store_init_configuration(self, values: dict) -> None:
        import json
        atomic_write_text(self.path.with_suffix(".config.json"),
                          json.dumps(values, indent=1, sort_keys=True) + "\n")

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        step = int(step or 0)
        if not self._resumed:  # points at or after the first new step were the lost work's
            self.rows = [r for r in self.rows if r[0] < step]
            self._resumed = True
        self.rows.extend((step, k, v) for k, v in _scalars(values).items())
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "name", "value"])
        w.writerows((s, n, repr(v)) for s, n, v in self.rows)
        atomic_write_text(self.path, buf.getvalue())

    def finish(self) -> None:
        pass


class Tracked:
    """The trackers of one training (one tracker run): :meth:`log` and :meth:`finish`."""

    def __init__(self, trackers: list):
        self.trackers = trackers
        self.last_step = 0

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        """Log the finite numbers of ``values`` at ``step`` (default: the last step logged,
        e.g. a test score after the last epoch)."""
        step = self.last_step if step is None else int(step)
        self.last_step = step
        values = _scalars(values)
        if values:
            for t in self.trackers:
                t.log(values, step=step)

    def on_epoch(self, then: Callable | None = None) -> Callable[[int, dict], None]:
        """A ``fit(on_epoch=...)`` callback that logs the epoch's row, then calls ``then``."""
        def cb(epoch: int, row: dict) -> None:
            self.log(row, epoch)
            if then is not None:
                then(epoch, row)
        return cb

    def finish(self, failed: bool = False) -> None:
        """End every tracker's run (once); ``failed`` marks an MLflow run FAILED."""
        trackers, self.trackers = self.trackers, []
        for t in trackers:
            if failed and t.name == "mlflow":
                import mlflow
                mlflow.end_run(status="FAILED")
            else:
                t.finish()


class RunTrackers:
    """The trackers of one ``mentor run``: :meth:`open` one :class:`Tracked` per training.

    ``run_dir`` is where the logs are written (the run's partial folder), ``final_dir`` the
    name the run will have (recorded in MLflow). With no ``names``, or off the main process,
    :meth:`open` returns ``None``.
    """

    def __init__(self, names: Sequence[str], run_dir: Path, experiment: str, *,
                 final_dir: Path | None = None, main: bool = True, resume: bool = False):
        check_available(names)
        self.names = list(dict.fromkeys(names)) if main else []
        self.run_dir, self.experiment = Path(run_dir), experiment
        self.final_dir = Path(final_dir or run_dir)
        self.resume = resume
        self._own_mlflow_uri = False
        self._open: list[Tracked] = []

    def open(self, run_name: str, config: dict[str, Any]) -> Tracked | None:
        """Start the run's trackers for the training ``run_name`` and store ``config``."""
        if not self.names:
            return None
        logs = self.run_dir / "logs"
        trackers = []
        for name in self.names:
            if name == "tensorboard":
                from accelerate.tracking import TensorBoardTracker
                t = TensorBoardTracker(run_name, logs / "tensorboard")
            elif name == "mlflow":
                from accelerate.tracking import MLflowTracker
                art = (str(self.final_dir.resolve() / "logs" / "mlartifacts")
                       if self._own_mlflow_uri else None)
                t = MLflowTracker(experiment_name=self.experiment, logging_dir=art,
                                  run_name=run_name, run_id=self._mlflow_run_id(run_name),
                                  tags={"mentor.run": self.final_dir.name})
            else:
                t = CSVTracker(run_name, logs / "csv")
            t.start()
            t.store_init_configuration(flat_config(config))
            trackers.append(t)
        tracked = Tracked(trackers)
        self._open.append(tracked)
        return tracked

    def _mlflow_run_id(self, run_name: str) -> str | None:
        """On resume, the MLflow run this training logged to before the interruption (so it
        continues there), else ``None`` (a new run)."""
        if not self.resume:
            return None
        import mlflow
        found = mlflow.search_runs(
            experiment_names=[self.experiment], output_format="list",
            filter_string=f"tags.`mlflow.runName` = '{run_name}' and "
                          f"tags.`mentor.run` = '{self.final_dir.name}'")
        return found[0].info.run_id if found else None

    @contextmanager
    def session(self) -> Iterator["RunTrackers"]:
        """The run's tracking: trackers a failure left open are ended (MLflow: FAILED); for
        the run's duration MLflow writes to ``RUN/logs/mlflow.db`` unless the user configured
        a tracking URI, and the previous setting is restored afterwards."""
        try:
            with self._mlflow_uri():
                try:
                    yield self
                except BaseException:
                    for tracked in self._open:
                        tracked.finish(failed=True)
                    raise
        finally:
            self._open = []

    @contextmanager
    def _mlflow_uri(self) -> Iterator[None]:
        if "mlflow" not in self.names:
            yield
            return
        import mlflow
        from mlflow.tracking import is_tracking_uri_set
        if is_tracking_uri_set():
            yield
            return
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(f"sqlite:///{(self.run_dir / 'logs' / 'mlflow.db').resolve()}")
        self._own_mlflow_uri = True
        # creating the database logs its migrations at INFO; the progress bars own stderr
        quiet = {n: logging.getLogger(n).level for n in ("mlflow", "alembic")}
        for n in quiet:
            logging.getLogger(n).setLevel(logging.WARNING)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)
            self._own_mlflow_uri = False
            for n, level in quiet.items():
                logging.getLogger(n).setLevel(level)
