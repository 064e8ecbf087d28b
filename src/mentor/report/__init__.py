"""Run reports: the CLI leaderboard table, PNG plots and a self-contained HTML page."""

from .html import write_report
from .table import leaderboard_table

__all__ = ["leaderboard_table", "write_report"]
