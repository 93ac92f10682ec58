"""The README is executable truth: every console command and Python snippet in it runs.

The commands run in README order from a fresh working folder holding the repository's
``.venv`` and ``examples`` (as a clone does), starting with the demo build the README
shows first. The test changes only what a machine must: port 5000 becomes a free port
(``serve`` without ``--port`` gets one), the MQTT broker is the tests' own Mosquitto,
``sk_…`` is the key the latest ``keys create`` printed, and curl fails on an HTTP error.
``serve`` and ``simulate`` run in the background (a server until the next one replaces
it). Python snippets run afterwards, in order, in one interpreter. The ```bash block
(``make demo``, ``make test``) is what CI itself runs, so it is not run again here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
KEY = re.compile(r"sk_[A-Za-z0-9_\-]{10,}")


def fenced(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, indentation removed."""
    out = []
    for indent, language, body in FENCE.findall(text):
        lines = [line[len(indent) :] for line in body.splitlines()]
        out.append((language, "\n".join(lines)))
    return out


def console_commands(body: str) -> list[str]:
    """The ``$ `` lines of a console block, continuation lines joined."""
    commands: list[str] = []
    pending = ""
    for line in body.splitlines():
        if pending:
            pending += " " + line.strip()
        elif line.startswith("$ "):
            pending = line[2:]
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        commands.append(pending)
        pending = ""
    return commands


def test_readme_blocks_are_found():
    blocks = fenced(README.read_text(encoding="utf-8"))
    languages = [language for language, _ in blocks]
    assert languages.count("console") >= 6 and languages.count("python") >= 3
    commands = [c for lang, body in blocks if lang == "console" for c in console_commands(body)]
    assert any("ogrinfo" in c for c in commands)  # the indented block is found too
    assert any(c.startswith(".venv/bin/shikong raster zonal-stats") for c in commands)


class Runner:
    """Runs README commands in one working folder, with the substitutions above."""

    def __init__(self, folder: Path, mqtt: str) -> None:
        self.folder, self.mqtt = folder, mqtt
        self.port = free_port()
        self.key: str | None = None
        self.background: list[subprocess.Popen] = []
        self.server: subprocess.Popen | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHIKONG_")}
        self.env |= {"SHIKONG_MQTT": mqtt, "NO_COLOR": "1", "COLUMNS": "200"}

    def prepare(self, command: str) -> str:
        command = command.replace("localhost:5000", f"127.0.0.1:{self.port}")
        command = command.replace("--port 5000", f"--port {self.port}")
        command = command.replace("mqtt://127.0.0.1:1883", self.mqtt)
        if "sk_…" in command:
            assert self.key, f"{command!r} needs a key, but no keys create ran before it"
            command = command.replace("sk_…", self.key)
        if command.startswith("curl "):
            command = "curl --fail-with-body -sS " + command[len("curl ") :]
        if " serve " in f" {command} " and "--port" not in command:
            command = command.replace(" serve ", f" serve --port {self.port} ", 1)
        return command

    def run(self, original: str) -> None:
        command = self.prepare(original)
        words = shlex.split(command, comments=True)
        if "serve" in words:
            self._serve(command)
            return
        if "simulate" in words:
            proc = self._spawn(command)
            time.sleep(3)
            assert proc.poll() is None, f"{original!r} stopped: {self._log(proc)}"
            self.background.append(proc)
            return
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"README command failed: {original}\n{output[-4000:]}"
        if "keys create" in command:
            found = KEY.findall(output)
            assert found, f"keys create printed no key: {output}"
            self.key = found[-1]

    def _spawn(self, command: str) -> subprocess.Popen:
        log = (self.folder / f"bg-{len(self.background)}.log").open("w")
        return subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.folder,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _log(self, proc: subprocess.Popen) -> str:
        name = Path(proc.stdout.name if proc.stdout else "")
        logs = sorted(self.folder.glob("bg-*.log"))
        return "\n".join(p.read_text()[-2000:] for p in logs) or str(name)

    def _serve(self, command: str) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(20)
        self.server = self._spawn(command)
        self.background.append(self.server)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.server.poll() is None, f"{command!r} exited: {self._log(self.server)}"
            try:
                url = f"http://127.0.0.1:{self.port}/conformance?f=json"
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise AssertionError(f"{command!r} did not start serving")

    def stop(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.mark.slow
def test_every_readme_command_and_snippet_runs(tmp_path, mosquitto):
    folder = tmp_path / "clone"
    folder.mkdir()
    (folder / ".venv").symlink_to(ROOT / ".venv")
    (folder / "examples").symlink_to(ROOT / "examples")
    runner = Runner(folder, mosquitto)
    blocks = fenced(README.read_text(encoding="utf-8"))
    snippets = []
    try:
        for language, body in blocks:
            if language == "console":
                for command in console_commands(body):
                    runner.run(command)
            elif language == "python":
                snippets.append(body)
    finally:
        runner.stop()
    script = folder / "readme_snippets.py"
    script.write_text(
        "import sys\nnamespace = {}\n"
        + "".join(
            f"print('--- snippet {i}', flush=True)\nexec(compile({body!r}, 'README snippet "
            f"{i}', 'exec'), namespace)\n"
            for i, body in enumerate(snippets, 1)
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIKONG_")}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert done.stdout.count("--- snippet") == len(snippets) >= 3
