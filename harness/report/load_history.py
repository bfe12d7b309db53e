"""The real number of users over time, from Locust's own history, and each turn's concurrency.

Locust's `--csv PREFIX` writes PREFIX_stats_history.csv: one row a second (per request name with
`--csv-full-history`) with a `Timestamp` (Unix seconds) and a `User Count`. The run directory's
`locust_stats_history.csv` is read first, then `stats_stats_history.csv` (what `harness run`
writes today), then any `*_stats_history.csv`; only the `Aggregated` rows count. A run without one
falls back to the turn records' `users` (the count each session saw when it started), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HISTORY_FILES = ("locust_stats_history.csv", "stats_stats_history.csv")


@dataclass
class UserHistory:
    """`frame`: t_wall_s (Unix seconds) and users, ascending; `source`: the file, or the fallback."""

    frame: pd.DataFrame
    source: str
    from_locust: bool

    def users_at(self, t_wall_s: pd.Series | np.ndarray) -> np.ndarray:
        """The user count at each time: the history row nearest to it (Locust samples once a second, so
        a turn 0.6 s after a row is closer to the next one; a tie takes the earlier row); NaN more than
        half a second before the first row."""
        times = np.asarray(t_wall_s, dtype="float64")
        if self.frame.empty:
            return np.full(times.shape, np.nan)
        stamps = self.frame["t_wall_s"].to_numpy(dtype="float64")
        users = self.frame["users"].to_numpy(dtype="float64")
        after = np.clip(np.searchsorted(stamps, times, side="left"), 0, len(stamps) - 1)
        before = np.clip(after - 1, 0, len(stamps) - 1)
        nearest = np.where(np.abs(stamps[after] - times) < np.abs(times - stamps[before]), after, before)
        out = users[nearest]
        out[~np.isfinite(times) | (times < stamps[0] - 0.5)] = np.nan
        return out


def history_file(run_dir: Path) -> Path | None:
    for name in HISTORY_FILES:
        if (run_dir / name).is_file():
            return run_dir / name
    return next(iter(sorted(run_dir.glob("*_stats_history.csv"))), None)


def read_locust_history(path: Path) -> pd.DataFrame:
    """t_wall_s and users from a Locust stats history CSV (its Aggregated rows, one per timestamp)."""
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return pd.DataFrame(columns=["t_wall_s", "users"])
    if "Timestamp" not in raw or "User Count" not in raw:
        return pd.DataFrame(columns=["t_wall_s", "users"])
    if "Name" in raw:
        raw = raw[raw["Name"].astype(str) == "Aggregated"]
    frame = pd.DataFrame({"t_wall_s": pd.to_numeric(raw["Timestamp"], errors="coerce"),
                          "users": pd.to_numeric(raw["User Count"], errors="coerce")}).dropna()
    return frame.drop_duplicates("t_wall_s", keep="last").sort_values("t_wall_s").reset_index(drop=True)


def user_history(run_dir: Path, turns: pd.DataFrame) -> UserHistory:
    """Locust's history when the run directory has it, else the records' own user counts."""
    path = history_file(run_dir)
    if path is not None:
        frame = read_locust_history(path)
        if not frame.empty:
            return UserHistory(frame, f"Locust's history ({path.name}, column User Count)", True)
    rows = turns[["t_wall_s", "users"]].dropna()
    per_second = rows.groupby(np.floor(rows["t_wall_s"].astype("float64")))["users"].max()   # Locust's own cadence
    frame = pd.DataFrame({"t_wall_s": per_second.index.to_numpy(dtype="float64"),
                          "users": per_second.to_numpy(dtype="float64")})
    return UserHistory(frame,
                       "the turn records (users when each session started: no Locust history in the run directory)",
                       False)
