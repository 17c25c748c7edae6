"""A small progress bar in tqdm's format, so LLM.generate shows what vLLM shows without the
tqdm dependency:

    Processed prompts: 100%|██████████| 4/4 [00:00<00:00, 41.40it/s, est. speed input: ...]
"""

import shutil
import sys
import time
from typing import Optional, TextIO


def _format_interval(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ProgressBar:
    """tqdm's default meter: ``desc: pct%|bar| n/total [elapsed<remaining, rate, postfix]``."""

    _BLOCKS = " ▏▎▍▌▋▊▉█"
    _ASCII = " 123456789#"

    def __init__(
        self,
        total: int,
        desc: str,
        enabled: bool = True,
        file: Optional[TextIO] = None,
        postfix: Optional[str] = None,
        mininterval: float = 0.1,
    ) -> None:
        self.total = total
        self.desc = desc
        self.enabled = enabled
        self.file = file if file is not None else sys.stderr
        self.postfix = postfix
        self.mininterval = mininterval
        self.n = 0
        self.start = time.monotonic()
        self._last_print = 0.0
        self._closed = False
        self._width = 0
        if enabled:
            encoding = (getattr(self.file, "encoding", None) or "").lower().replace("-", "")
            self._chars = self._BLOCKS if encoding.startswith("utf") else self._ASCII
            self._refresh()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.enabled and (time.monotonic() - self._last_print >= self.mininterval or self.n >= self.total):
            self._refresh()

    def set_postfix_str(self, postfix: str) -> None:
        self.postfix = postfix

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._refresh()
            self.file.write("\n")
            self.file.flush()

    def format_meter(self) -> str:
        elapsed = self.elapsed
        rate = self.n / elapsed if elapsed > 0 and self.n else None
        if rate is None:
            rate_str = "?it/s"
        elif rate < 1:
            rate_str = f"{1 / rate:5.2f}s/it"
        else:
            rate_str = f"{rate:5.2f}it/s"
        remaining = _format_interval((self.total - self.n) / rate) if rate else "?"
        postfix = f", {self.postfix}" if self.postfix else ""
        frac = min(1.0, self.n / self.total) if self.total else 1.0
        left = f"{self.desc}: {frac * 100:3.0f}%|"
        right = f"| {self.n}/{self.total} [{_format_interval(elapsed)}<{remaining}, {rate_str}{postfix}]"
        width = 10  # tqdm's bar width when the output is not a terminal
        isatty = getattr(self.file, "isatty", None)
        if isatty is not None and isatty():
            columns = shutil.get_terminal_size((80, 20)).columns
            width = max(1, columns - len(left) - len(right) - 1)
        full, part = divmod(int(frac * width * 8), 8)
        bar = self._chars[-1] * full
        if full < width:
            bar += (self._chars[part] if part else " ") + " " * (width - full - 1)
        return left + bar + right

    def _refresh(self) -> None:
        line = self.format_meter()
        pad = " " * max(0, self._width - len(line))
        self._width = len(line)
        self.file.write("\r" + line + pad)
        self.file.flush()
        self._last_print = time.monotonic()
