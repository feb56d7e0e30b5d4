"""Fixtures for the client suite: a broker per test module, the compiled Java
programs, and kcat. Every subprocess and client call here has a timeout."""
import os
import shutil
import subprocess

import pytest

from harness import REPO, Broker, compile_java


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"broker exited with {rc} on SIGTERM; stderr:\n{b.stderr_tail()}"


@pytest.fixture(scope="session")
def java_classpath(tmp_path_factory):
    jars = os.environ.get("MILLRACE_JARS", str(REPO / ".ci" / "cache" / "jars"))
    if not os.path.isfile(os.path.join(jars, "kafka-clients.jar")):
        pytest.fail(f"{jars}/kafka-clients.jar is missing: run scripts/setup-clients.sh (or set MILLRACE_JARS)")
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH (JDK 17 needed)")
    return compile_java(tmp_path_factory.mktemp("java-classes"), jars)


@pytest.fixture(scope="session")
def kcat_bin():
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not on PATH (Debian package kcat)")
    subprocess.run([path, "-V"], check=True, capture_output=True, timeout=10)
    return path
