"""A one-node Slurm cluster on this machine, for the `slurm` launcher's integration test.

Started as root from Debian's `slurm-wlm` and `munge` (installed by .ci/run): a private munged
(its own key and socket), slurmctld and slurmd on this host's name, a temporary slurm.conf on
free ports; torn down afterwards. ``start`` returns why it could not start, or None.
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

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OneNodeSlurm:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="noprop-slurm-"))  # short: munge's socket path
        self.conf = self.folder / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}

    def start(self) -> str | None:
        if os.geteuid() != 0:
            return "not root: the daemons run as root"
        missing = [name for name in DAEMONS if shutil.which(name) is None]
        if missing:
            return f"{', '.join(missing)} not installed (Debian: apt-get install slurm-wlm munge)"
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        (self.folder / "state").mkdir()
        (self.folder / "spool").mkdir()
        munged = self.run(
            "munged",
            "--force",
            f"--socket={self.folder}/munge.sock",
            f"--key-file={key}",
            f"--pid-file={self.folder}/munged.pid",
            f"--log-file={self.folder}/munged.log",
            f"--seed-file={self.folder}/munged.seed",
        )
        if munged.returncode != 0:
            return f"munged did not start: {munged.stderr.strip()[-300:]}"
        host = socket.gethostname().split(".")[0]
        cpus = os.cpu_count() or 1
        self.conf.write_text(f"""\
ClusterName=noproptest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.folder}/munge.sock
CredType=cred/munge
StateSaveLocation={self.folder}/state
SlurmdSpoolDir={self.folder}/spool
SlurmctldPidFile={self.folder}/slurmctld.pid
SlurmdPidFile={self.folder}/slurmd.pid
SlurmctldLogFile={self.folder}/slurmctld.log
SlurmdLogFile={self.folder}/slurmd.log
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        for daemon in ("slurmctld", "slurmd"):
            started = self.run(daemon)
            if started.returncode != 0:
                return f"{daemon} did not start: {started.stderr.strip()[-300:] or self.log_tail(daemon)}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-o", "%T").stdout.strip()
            if state == "idle":
                return None
            time.sleep(0.5)
        return f"the node never became idle (sinfo: {state!r}); {self.log_tail('slurmd')}"

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60, check=False
        )

    def log_tail(self, daemon: str) -> str:
        try:
            return f"{daemon}.log: " + " | ".join((self.folder / f"{daemon}.log").read_text().splitlines()[-3:])
        except OSError:
            return f"no {daemon}.log"

    def stop(self) -> None:
        for daemon in ("slurmd", "slurmctld", "munged"):
            try:
                os.kill(int((self.folder / f"{daemon}.pid").read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                continue
        time.sleep(1)
        shutil.rmtree(self.folder, ignore_errors=True)
