"""A real Spark standalone cluster on this machine: a master, two workers and a Spark
Connect server, each its own JVM, started from the installed pyspark and stopped at the end.

Why real: Pantry's Spark engine talks to a Connect server that schedules tasks on
executors in other processes. Only that path can lose a worker in the middle of a job, ship
an entity frame over gRPC, or write Parquet from two executors at once; ``local[2]`` in one
JVM does none of it. Every process binds 127.0.0.1 on free ports (``SPARK_LOCAL_IP``), and
the JVMs run C1 only with the serial GC: short jobs on two cores spend less CPU compiling.
Used by the tests (the ``spark_cluster`` fixture in ``tests/conftest.py``) and the benchmark (``bench/spark.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

JVM_FLAGS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# Hadoop's S3A connector and the AWS SDK it calls, which pyspark does not ship ('make setup'
# puts them here: see the Makefile's s3a-jars)
S3A_JARS = Path(__file__).resolve().parents[1] / ".venv" / "share" / "s3a-jars"
EXECUTOR_FLAGS = JVM_FLAGS  # C2 on the executors was slower still: short tasks never repay its compiling


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def java_missing() -> str | None:
    """Why the cluster cannot start here, or None."""
    if shutil.which("java") is None:
        return "Spark needs Java 17+: none on PATH ('make setup' installs default-jre-headless)"
    return None


def s3a_jars() -> list[Path]:
    """The S3A connector's jars, or [] when 'make setup' has not fetched them."""
    return sorted(S3A_JARS.glob("*.jar")) if (S3A_JARS / ".done").exists() else []


def s3a_settings(endpoint: str, key: str = "test", secret: str = "test") -> dict[str, str]:
    """Cluster settings that point ``s3a://`` at ``endpoint`` (moto_server here), as a user's
    cluster points it at S3 with its own (EMR and Databricks set these for you).

    Why the numbers: the connector here is hadoop-aws 3.3.1 (the newest PyPI carries, in
    sagemaker_pyspark) beside pyspark's Hadoop 3.4.1, whose defaults write durations with a
    unit ("60s") that 3.3.1 reads as plain numbers, and name SDK v2 credential classes it does
    not have. Each default it would misread is given here as 3.3.1 reads it."""
    hadoop = {
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.endpoint": endpoint,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.access.key": key,
        "fs.s3a.secret.key": secret,
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.connection.establish.timeout": "30000",  # ms
        "fs.s3a.connection.timeout": "200000",  # ms
        "fs.s3a.connection.ttl": "300000",  # ms
        "fs.s3a.threads.keepalivetime": "60",  # s
        "fs.s3a.multipart.purge.age": "86400",  # s
        "fs.s3a.assumed.role.session.duration": "1800",  # s
    }
    return {f"spark.hadoop.{k}": v for k, v in hadoop.items()}


class PortTaken(RuntimeError):
    """Another process bound the port between its choice and the server's bind."""


def _wait_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 120, ready: str = "") -> None:
    """Until the process listens on ``port`` and, when ``ready`` is given, its log says so.
    Why the log too: a port another process took in the meantime also accepts connections,
    while the server that failed to bind it exits (pyspark's client then retried forever)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if ready else ""
        if process.poll() is not None or (ready and "BindException" in text):
            text = log.read_text(errors="replace")
            kind = PortTaken if "BindException" in text else RuntimeError
            raise kind(f"a Spark process stopped while starting; its log:\n{text[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0 and ready in text:
                return
        time.sleep(0.2)
    raise RuntimeError(f"no Spark process on port {port} after {seconds:.0f} s; its log:\n{log.read_text()[-3000:]}")


class SparkCluster:
    """Master, ``workers`` workers of one core each, and a Connect server at ``self.url``."""

    def __init__(  # noqa: PLR0913 - the cluster's sizes and what it is given
        self,
        workers: int = 2,
        worker_memory: str = "1g",
        executor_memory: str = "768m",
        driver_memory: str = "1g",
        settings: dict[str, str] | None = None,
        classpath: list[Path] | None = None,
    ) -> None:
        """``settings``: more ``--conf`` for the Connect server (a user's cluster settings, such
        as ``s3a_settings``); ``classpath``: jars the driver and executors load from this disk."""
        self.settings = dict(settings or {})
        if classpath:
            joined = ":".join(str(p) for p in classpath)
            self.settings |= {"spark.driver.extraClassPath": joined, "spark.executor.extraClassPath": joined}
        self.folder = Path(tempfile.mkdtemp(prefix="pantry-spark-"))
        self.home = spark_home()
        self.env = {
            **os.environ,
            "SPARK_HOME": str(self.home),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": str(self.folder / "local"),
            "SPARK_LOG_DIR": str(self.folder / "logs"),
            "SPARK_WORKER_DIR": str(self.folder / "work"),
            "SPARK_DAEMON_JAVA_OPTS": JVM_FLAGS,
            "SPARK_DAEMON_MEMORY": driver_memory,  # the Connect server counts as a daemon: its driver heap
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.worker_memory = worker_memory
        self.executor_memory = executor_memory
        self.master_port = _free_port()
        self.connect_port = _free_port()
        self.master_url = f"spark://127.0.0.1:{self.master_port}"
        self.url = f"sc://127.0.0.1:{self.connect_port}"
        try:
            self._start(workers)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = self.folder / f"{name}.log"
        process = subprocess.Popen(
            command,
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a kill of the group takes the JVM and its shell wrapper
        )
        self.processes[name] = process
        return process

    def _start(self, workers: int) -> None:
        spark_class = str(self.home / "bin" / "spark-class")
        master = self._spawn(
            "master",
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
             str(self.master_port), "--webui-port", str(_free_port())],
        )  # fmt: skip
        _wait_port(self.master_port, master, self.folder / "master.log")
        for i in range(workers):
            self.start_worker(i)
        for attempt in range(3):  # a port taken between its choice and the bind: another port
            try:
                return self._start_connect()
            except PortTaken:
                if attempt == 2:
                    raise
                self.stop_connect()
                self.connect_port = _free_port()
                self.url = f"sc://127.0.0.1:{self.connect_port}"

    def _start_connect(self) -> None:
        connect = self._spawn(
            "connect",
            [
                str(self.home / "bin" / "spark-submit"),
                "--master", self.master_url,
                "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
                "--name", "pantry-connect",
                "--conf", f"spark.executor.extraJavaOptions={EXECUTOR_FLAGS}",
                "--conf", "spark.driver.host=127.0.0.1",
                "--conf", "spark.driver.bindAddress=127.0.0.1",
                "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
                "--conf", f"spark.connect.grpc.binding.port={self.connect_port}",
                "--conf", "spark.ui.enabled=false",
                "--conf", "spark.executor.cores=1",
                "--conf", f"spark.executor.memory={self.executor_memory}",
                "--conf", "spark.sql.shuffle.partitions=4",
                "--conf", "spark.sql.session.timeZone=UTC",
                "--conf", f"spark.sql.warehouse.dir={self.folder / 'warehouse'}",
                "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={self.folder} {JVM_FLAGS}",
                "--conf", "spark.task.maxFailures=4",
                # every process is on this one host: waiting 3 s for a "local" executor is waiting for nothing
                "--conf", "spark.locality.wait=0s",
                *[arg for key, value in self.settings.items() for arg in ("--conf", f"{key}={value}")],
                "spark-internal",
            ],
        )  # fmt: skip
        _wait_port(self.connect_port, connect, self.folder / "connect.log", seconds=180, ready="server started at")

    def start_worker(self, i: int) -> None:
        self._spawn(
            f"worker{i}",
            [str(self.home / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker",
             "--host", "127.0.0.1", "--cores", "1", "--memory", self.worker_memory,
             "--webui-port", str(_free_port()), "--work-dir", str(self.folder / f"work{i}"), self.master_url],
        )  # fmt: skip

    def worker_pids(self, i: int) -> list[int]:
        """The worker's JVM and the executor JVMs it launched (its process group's members)."""
        group = self.processes[f"worker{i}"].pid
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == group:
                        found.append(int(entry.name))
                except ProcessLookupError:
                    continue
        return found

    def kill_worker(self, i: int) -> None:
        """SIGKILL the worker and its executors, as a machine that dies would lose them."""
        for pid in self.worker_pids(i):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_connect(self) -> None:
        process = self.processes.pop("connect", None)
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # it had stopped by itself
                pass
            process.wait(timeout=30)

    def stop(self) -> None:
        for name in ["connect", *[n for n in self.processes if n.startswith("worker")], "master"]:
            process = self.processes.pop(name, None)
            if process is None:
                continue
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)
