"""`cpiscope slurm --submit` through a real one-node Slurm (Debian's slurmctld/slurmd 22.05, auth/none),
started by this test from a config in a temporary folder: the array of probe shards (by checkpoint, by
probes) or of intervention shards (`cpiscope slurm intervene`, by intervention) and the merge job
run, and the merged file has the same data as a single-process run of the same job (reference: that
run; comparison: Tests/Fixtures/reliability/h5_digest.py `same`, raw bytes of every variable and every
root attribute but `created` and `command_line`; tolerance 0).

Skipped, with the reason, where Slurm is not installed (`.ci/deps.sh --python` installs it with apt),
where this is not root, or where the daemons cannot start (ports 6817/6818 busy). Cleans up: scancel,
then the daemons stopped by their pid files.

    swift build && python3 -m pytest Tests/python/test_slurm.py
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".build" / "debug" / "cpiscope"
FIXTURE = ROOT / "Tests" / "Fixtures" / "probe-trajectory"
DIGEST = ROOT / "Tests" / "Fixtures" / "reliability" / "h5_digest.py"
NODE = "cpinode"

CONFIG = """ClusterName=cpiscope-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
MinJobAge=5
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def missing_slurm():
    for tool in ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            return f"Slurm is not installed ({tool} not found): .ci/deps.sh --python installs slurmctld slurmd slurm-client"
    if os.geteuid() != 0:
        return "the one-node Slurm test runs its daemons as root (SlurmUser=root)"
    for port in (6817, 6818):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return f"port {port} is in use (another Slurm?): the test's own daemons cannot start"
    return None


@pytest.fixture
def slurm(tmp_path):
    why = missing_slurm()
    if why:
        pytest.skip(why)
    if not BINARY.exists():
        pytest.skip("build cpiscope first: swift build")
    d = tmp_path / "slurm"
    for sub in ("state", "spool"):
        (d / sub).mkdir(parents=True)
    conf = d / "slurm.conf"
    conf.write_text(CONFIG.format(d=d, node=NODE, cpus=os.cpu_count() or 1))
    env = dict(os.environ, SLURM_CONF=str(conf))
    started = []
    try:
        subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True, timeout=60)
        started.append(d / "slurmctld.pid")
        subprocess.run(["slurmd", "-f", str(conf), "-N", NODE], env=env, check=True, timeout=60)
        started.append(d / "slurmd.pid")
        # Both daemons exit 0 even when their child dies at once: trust only our own controller, answering.
        deadline = time.time() + 30
        while True:
            r = subprocess.run(["scontrol", "show", "config"], env=env, capture_output=True, text=True, timeout=30)
            s = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True, timeout=30)
            if r.returncode == 0 and str(d / "state") in r.stdout and s.stdout.strip() in ("idle", "mix", "alloc"):
                break
            if time.time() > deadline:
                logs = "".join((d / f).read_text()[-2000:] for f in ("slurmctld.log", "slurmd.log") if (d / f).exists())
                pytest.skip(f"Slurm did not come up (node state {s.stdout.strip()!r}):\n{logs}")
            time.sleep(0.5)
        yield env, d
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], env=env, capture_output=True, timeout=30)
        time.sleep(1)
        for pid_file in reversed(started):
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)


def job_state(env, job):
    r = subprocess.run(["scontrol", "-o", "show", "job", job], env=env, capture_output=True, text=True, timeout=30)
    states = [w.split("=", 1)[1] for line in r.stdout.splitlines() for w in line.split() if w.startswith("JobState=")]
    return states


# `cpiscope slurm …` is `cpiscope slurm probe …`; `cpiscope slurm intervene …` shards an intervention run.
@pytest.mark.parametrize("command,shard_by,tasks", [("probe", "checkpoints", 3), ("probe", "probes", 2),
                                                    ("intervene", "interventions", 2)])
def test_slurm_array_and_merge_equal_single_process_run(slurm, tmp_path, command, shard_by, tasks):
    env, d = slurm
    common = [str(FIXTURE), "--probes", str(FIXTURE / "probes.jsonl"), "--batch", "2"]
    if command == "intervene":
        common += ["--ablate", "heads:all", "--knockout", "context@all"]
    single = tmp_path / "single.h5"
    r = subprocess.run([str(BINARY), command, *common, "-o", str(single), "--threads", "1", "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run.h5"
    slurm_command = ["slurm"] if command == "probe" else ["slurm", command]
    r = subprocess.run([str(BINARY), *slurm_command, *common, "-o", str(out), "--shard-by", shard_by, "--tasks", str(tasks),
                        "--cpus-per-task", "1", "--time", "00:10:00", "--partition", "test", "--submit"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "#SBATCH --array=1-%d" % tasks in r.stdout and "--dependency=afterok" in (tmp_path / "run.slurm" / "submit.sh").read_text()
    line = next(l for l in r.stdout.splitlines() if l.startswith("submitted array job"))
    array_id, merge_id = line.split()[3], line.split()[-1]
    deadline = time.time() + 300
    while True:
        states = job_state(env, merge_id)
        if states and states[0] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            break
        assert time.time() < deadline, f"merge job {merge_id} still {states} after 300 s"
        time.sleep(1)
    logs = "\n".join(p.read_text()[-1500:] for p in sorted((tmp_path / "run.slurm" / "logs").glob("*")))
    assert states[0] == "COMPLETED", f"merge job {merge_id}: {states}; array {array_id}: {job_state(env, array_id)}\n{logs}"
    for i in range(1, tasks + 1):
        assert (tmp_path / f"run.shard-{i}-of-{tasks}.h5").exists()
    r = subprocess.run(["python3", str(DIGEST), "same", str(single), str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"merged file differs from the single-process run: {r.stdout}{r.stderr}"
    assert json.loads(r.stdout)["same"]
