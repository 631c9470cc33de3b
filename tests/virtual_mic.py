"""A virtual microphone for tests: a private PulseAudio daemon with a null sink.

Files played into the sink with ``paplay`` come back from its monitor, which is the default
source, so PortAudio records them through the same path as a real microphone. PortAudio
reads the environment when sounddevice is imported: run the recording side in a subprocess
with ``VirtualMic.env`` (see ``run_python``).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SINK = "vmic_sink"
TOOLS = ("pulseaudio", "pactl", "paplay")

_DAEMON_CONFIG = f"""\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name={SINK} rate=48000 norewinds=1
set-default-sink {SINK}
set-default-source {SINK}.monitor
"""


def isolated_pulse_env(root: Path, server: str) -> dict:
    """The environment of a PulseAudio client that sees only ``server`` and keeps its files in ``root``."""
    client_config = root / "client.conf"
    client_config.write_text("autospawn = no\n")
    return {
        **os.environ,
        "HOME": str(root),
        "XDG_RUNTIME_DIR": str(root),
        "XDG_CONFIG_HOME": str(root / "config"),
        "PULSE_STATE_PATH": str(root / "state"),
        "PULSE_RUNTIME_PATH": str(root / "pulse"),
        "PULSE_SERVER": server,
        "PULSE_CLIENTCONFIG": str(client_config),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


def run_python(code: str, env: dict, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with ``env``; raise with its output if it fails."""
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"subprocess failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


class VirtualMic:
    """A private PulseAudio daemon under a fresh folder; use as a context manager."""

    def __init__(self):
        # A short path: the socket path must fit in 108 bytes. mkdtemp makes it mode 700.
        self.root = Path(tempfile.mkdtemp(prefix="vmic-"))
        self.env = isolated_pulse_env(self.root, f"unix:{self.root / 'pulse' / 'native'}")
        self._daemon = None

    def start(self, timeout: float = 10.0):
        config = self.root / "daemon.pa"
        config.write_text(_DAEMON_CONFIG)
        self._log = open(self.root / "daemon.log", "wb")
        self._daemon = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(config), "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "daemon.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"PulseAudio did not start:\n{log}")
            time.sleep(0.02)

    def _ready(self) -> bool:
        probe = subprocess.run(["pactl", "info"], env=self.env, capture_output=True)
        return probe.returncode == 0

    def play(self, path) -> subprocess.Popen:
        """Start playing a sound file into the virtual microphone (in real time)."""
        return subprocess.Popen(["paplay", "-d", SINK, str(path)], env=self.env)

    def stop(self):
        """Kill the daemon and remove its folder."""
        if self._daemon is not None:
            self._daemon.kill()
            self._daemon.wait()
            self._log.close()
            self._daemon = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()


def missing_tools() -> list:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@pytest.fixture
def virtual_mic():
    """A started VirtualMic; skips when PulseAudio is not installed."""
    if missing := missing_tools():
        pytest.skip(f"virtual microphone needs {', '.join(missing)} (Debian packages pulseaudio pulseaudio-utils)")
    with VirtualMic() as mic:
        yield mic
