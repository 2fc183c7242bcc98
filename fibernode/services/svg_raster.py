"""Rasterise an SVG in a child process, bounded in time and memory.

cairosvg draws whatever the document asks for: a small file of ``<use>`` chains,
markers on every vertex or nested patterns can keep it busy for minutes. The
upload is counted first (:mod:`fibernode.services.branding`), but the drawing
itself runs here, in a fresh interpreter with its own CPU and address-space
limits that the parent kills after :data:`TIMEOUT_SECONDS`, so no SVG can hold a
web worker (or its memory) hostage.

Run as ``python -m fibernode.services.svg_raster WIDTH HEIGHT SECONDS`` with the
SVG on stdin; the PNG comes back on stdout.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
MEMORY_BYTES = 1024 * 1024 * 1024  # address space of the child; cairo needs far less
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class RasterTimeout(Exception):
    """The drawing took longer than allowed (the child was killed)."""


class RasterFailed(Exception):
    """cairosvg refused the document or the child died (memory limit, crash)."""


def rasterize(svg: bytes, width: int, height: int, *,
              timeout: float | None = None) -> bytes:
    """The SVG drawn at ``width`` × ``height`` as PNG bytes.

    Raises:
        RasterTimeout: not done within ``timeout`` seconds (default :data:`TIMEOUT_SECONDS`).
        RasterFailed: cairosvg failed or the child hit its memory limit.
    """
    seconds = TIMEOUT_SECONDS if timeout is None else timeout
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH"))
                                        if p)
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed args
            [sys.executable, "-m", __name__, str(width), str(height),
             str(max(1, int(seconds + 1)))],
            input=svg, capture_output=True, timeout=seconds, env=env, check=False)
    except subprocess.TimeoutExpired:  # run() has killed the child already
        raise RasterTimeout from None
    if done.returncode != 0 or not done.stdout:
        log.warning("svg rasterisation failed rc=%s: %s", done.returncode,
                    done.stderr.decode(errors="replace")[-500:])
        raise RasterFailed
    return done.stdout


def _child(argv: list[str]) -> int:
    import resource

    width, height, cpu_seconds = (int(a) for a in argv[:3])
    # The parent's wall-clock timeout is the bound; these stop a child it cannot reach.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    import cairosvg

    svg = sys.stdin.buffer.read()
    try:
        png = cairosvg.svg2png(bytestring=svg, output_width=width, output_height=height,
                               unsafe=False)
    except Exception as exc:  # noqa: BLE001 - any refusal means "unusable", said on stderr
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(png)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
