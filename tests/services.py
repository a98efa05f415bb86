"""Servers the cluster and gradebook tests start themselves, on 127.0.0.1, and stop by PID:
a Dask scheduler with its workers as separate processes (the multi-machine shape), and a
PostgreSQL server in a temporary data directory (Debian's `postgresql` package)."""
import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import free_port

DASK = str(Path(sys.executable).parent / "dask")


def service_env():
    """The tools' environment: this venv first on PATH, figures without a display."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "MPLBACKEND": "Agg"}


def stop(process, timeout=20):
    """Stop a process we started, by its PID: terminate, then kill."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.2)


class DaskProcesses:
    """`dask scheduler` and `dask worker` processes, each started by this test."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler_file = self.folder / "scheduler.json"
        self.scheduler = None
        self.workers = []

    def start_scheduler(self):
        self.scheduler_file.unlink(missing_ok=True)
        log = (self.folder / "scheduler.log").open("ab")
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(free_port()),
             "--no-dashboard", "--scheduler-file", str(self.scheduler_file)],
            stdout=log, stderr=subprocess.STDOUT, env=service_env())
        wait_for(self.scheduler_file.exists, 60, "the Dask scheduler did not start")
        return self.address

    @property
    def address(self):
        return json.loads(self.scheduler_file.read_text())["address"]

    def start_worker(self, name):
        """One worker process, one thread, no nanny: its PID is the worker itself."""
        log = (self.folder / f"{name}.log").open("ab")
        worker = subprocess.Popen(
            [DASK, "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
             "--host", "127.0.0.1", "--no-dashboard"],
            stdout=log, stderr=subprocess.STDOUT, env=service_env())
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, count, timeout=60):
        from distributed import Client
        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)

    def stop(self):
        for worker in self.workers:
            stop(worker)
        if self.scheduler is not None:
            stop(self.scheduler)


@contextlib.contextmanager
def dask_processes(folder, workers=2):
    """A scheduler and `workers` worker processes on 127.0.0.1; yields the `DaskProcesses`."""
    cluster = DaskProcesses(folder)
    try:
        cluster.start_scheduler()
        for number in range(workers):
            cluster.start_worker(f"worker{number}")
        if workers:
            cluster.wait_for_workers(workers)
        yield cluster
    finally:
        cluster.stop()


# ---------------------------------------------------------------- PostgreSQL

def postgres_bin():
    """The folder of Debian's PostgreSQL server binaries, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def require_postgres():
    """Skip without PostgreSQL; fail instead with GD_REQUIRE_POSTGRES=1 (CI sets it)."""
    if postgres_bin() is None:
        message = "PostgreSQL is not installed here (Debian: apt-get install postgresql)"
        if os.environ.get("GD_REQUIRE_POSTGRES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@contextlib.contextmanager
def postgres_server(database="gd101"):
    """A PostgreSQL server on 127.0.0.1 in a fresh data directory, with an empty `database`;
    yields its SQLAlchemy URL. PostgreSQL refuses to run as root, so as root it runs as the
    package's `postgres` user."""
    require_postgres()
    import psycopg
    binaries = postgres_bin()
    data = Path(tempfile.mkdtemp(prefix="gd-postgres-"))  # not under pytest's 0700 tmp
    owner = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
    if owner:
        shutil.chown(data, **owner)
    port = free_port()
    server = None
    try:
        subprocess.run([binaries / "initdb", "-D", data / "db", "--auth=trust", "--username=postgres",
                        "--no-locale", "--encoding=UTF8"], check=True, capture_output=True, **owner)
        log = (data / "server.log").open("ab")
        server = subprocess.Popen(
            [binaries / "postgres", "-D", data / "db", "-h", "127.0.0.1", "-p", str(port),
             "-k", data, "-c", "fsync=off", "-c", "synchronous_commit=off"],
            stdout=log, stderr=subprocess.STDOUT, **owner)

        def answers():
            if server.poll() is not None:
                pytest.fail(f"postgres exited: {(data / 'server.log').read_text()[-2000:]}")
            try:
                psycopg.connect(host="127.0.0.1", port=port, user="postgres",
                                 dbname="postgres").close()
                return True
            except psycopg.OperationalError:
                return False
        wait_for(answers, 60, "PostgreSQL did not answer")
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(data, ignore_errors=True)
