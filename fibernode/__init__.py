"""FiberNode Internet: billing for Indonesian WiFi / RT-RW-Net providers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fibernode")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
