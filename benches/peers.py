#!/usr/bin/env python3
"""backlogd beside the tools a team would otherwise reach for, on the same events, same machine,
same run. Called by benches/peers.sh (which installs the peers and builds the release binary);
prints one `name = value` line per figure and a summary table of ratios.

1. Ingest: mtail (one-shot, a program counting registered and decided cases per track) against
   `backlogd send` to a daemon with durability = "fsync". Events per second and CPU-seconds per
   million events, the sender's CPU counted for backlogd.
2. Scrape: query-exporter on PostgreSQL (the same cases in a table with a deadline column, open and
   overdue counted by SQL at each scrape) against backlogd's /metrics. Latency p50/p99, CPU per
   scrape, and staleness: how long after a deadline passes each one shows it.
"""

import argparse
import csv
import datetime as dt
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def figure(name, value, note=""):
    print(f"{name} = {value}{'  (' + note + ')' if note else ''}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def tree_pids(root):
    """root and all its descendants."""
    pids, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except FileNotFoundError:
            children = []
        pids += children
        frontier += children
    return pids


def tree_cpu(root):
    return sum(cpu_seconds(pid) for pid in tree_pids(root))


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def wait_for(url, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            status, _ = get(url, timeout=5)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer 200 within {seconds} s")


def percentile(values, q):
    ordered = sorted(values)
    return ordered[round((len(ordered) - 1) * q)]


def sum_family(text, family):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(family + "{") or line.startswith(family + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Backlogd:
    def __init__(self, binary, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            {
                "BACKLOGD__SERVER__LISTEN": f"127.0.0.1:{self.port}",
                "BACKLOGD__STORE__PATH": os.path.join(workdir, "backlogd-store"),
                "BACKLOGD__STORE__DURABILITY": "fsync",
                # Every employee gets per-employee series, as in the /metrics target.
                "BACKLOGD__LIMITS__MAX_EMPLOYEE_SERIES": "20000",
            }
        )
        env.pop("RUST_LOG", None)
        self.process = subprocess.Popen(
            [binary, "run", "--config", os.path.join(ROOT, "config/backlogd.toml")],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(workdir, "backlogd.stderr"), "w"),
        )
        wait_for(self.url + "/readyz")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def scrape_series(url, count, pause, cpu_of):
    """`count` scrapes of `url`, `pause` seconds apart: (latencies in ms, CPU seconds per scrape)."""
    latencies = []
    cpu_before = cpu_of()
    for _ in range(count):
        began = time.perf_counter()
        status, body = get(url)
        latencies.append((time.perf_counter() - began) * 1000)
        assert status == 200, status
        time.sleep(pause)
    return latencies, (cpu_of() - cpu_before) / count, body


# ---------------------------------------------------------------------------------------------
# 1. Ingest against mtail

MTAIL_PROGRAM = r"""
# Counts what a log line can tell on its own: registrations per track, decisions and closures.
# mtail keeps no per-case state, so it cannot say which track a decision belongs to, how many
# cases are open per location, or move an overdue gauge as time passes.
counter mtail_cases_registered_total by track
counter mtail_cases_decided_total
counter mtail_cases_closed_total

/"type":"case\.registered".*"track":"(?P<track>[^"]+)"/ {
  mtail_cases_registered_total[$track]++
}
/"type":"case\.decided"/ {
  mtail_cases_decided_total++
}
/"type":"case\.closed"/ {
  mtail_cases_closed_total++
}
"""


def ingest_vs_mtail(binary, events_file, events, workdir, batch):
    progs = os.path.join(workdir, "mtail")
    os.makedirs(progs, exist_ok=True)
    with open(os.path.join(progs, "backlog.mtail"), "w") as f:
        f.write(MTAIL_PROGRAM)
    log("mtail: one-shot over the events")
    cpu_before, began = children_cpu(), time.perf_counter()
    out = subprocess.run(
        ["mtail", "--one_shot", "--one_shot_format=prometheus", "--progs", progs,
         "--logs", events_file, "--logtostderr"],
        capture_output=True, text=True, check=True,
    )
    mtail_wall, mtail_cpu = time.perf_counter() - began, children_cpu() - cpu_before
    registered = sum_family(out.stdout, "mtail_cases_registered_total")
    assert registered > 0, "mtail counted registrations:\n" + out.stdout[:2000]

    log("backlogd: backlogd send to a daemon with fsync")
    daemon = Backlogd(binary, workdir)
    daemon_cpu_before = cpu_seconds(daemon.process.pid)
    cpu_before, began = children_cpu(), time.perf_counter()
    subprocess.run(
        [binary, "send", "--url", daemon.url, "--batch", str(batch), events_file],
        check=True, stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - began
    sender_cpu = children_cpu() - cpu_before
    daemon_cpu = cpu_seconds(daemon.process.pid) - daemon_cpu_before
    _, body = get(daemon.url + "/metrics")
    assert sum_family(body, "backlogd_cases_registered_total") == registered, (
        "backlogd and mtail count the same registrations"
    )
    per_million = lambda cpu: cpu * 1e6 / events  # noqa: E731
    figure("mtail_events_per_second", f"{events / mtail_wall:.0f}")
    figure("mtail_cpu_seconds_per_million_events", f"{per_million(mtail_cpu):.2f}")
    figure("backlogd_send_events_per_second", f"{events / wall:.0f}", f"one sender, --batch {batch}")
    figure("backlogd_cpu_seconds_per_million_events",
           f"{per_million(daemon_cpu + sender_cpu):.2f}",
           f"daemon {per_million(daemon_cpu):.2f} + sender {per_million(sender_cpu):.2f}")
    ratio = mtail_cpu / (daemon_cpu + sender_cpu)
    figure("backlogd_vs_mtail_events_per_cpu_second", f"{ratio:.2f}x")
    return daemon, {"mtail_ratio": ratio}


# ---------------------------------------------------------------------------------------------
# 2. Scrape against query-exporter on PostgreSQL


def cases_csv(events_file, path, period_months=6):
    """Replays the events into the table a case system would hold: one row per case with its
    track, location, deadline, whether it is suspended and when it was decided."""
    cases = {}
    with open(events_file) as f:
        for line in f:
            event = json.loads(line)
            kind, data = event["type"], event["data"]
            case = data.get("case")
            if kind == "case.registered":
                received = parse_time(data.get("received_at") or event["time"])
                deadline = parse_time(data["deadline"]) if "deadline" in data else add_months(
                    received, period_months)
                cases[case] = {"track": data["track"], "location": data.get("location", "unknown"),
                               "deadline": deadline, "suspended_at": None, "decided_at": None}
            elif case in cases:
                row = cases[case]
                if kind == "case.transferred":
                    row["location"] = data["location"]
                elif kind in ("case.decided", "case.closed"):
                    row["decided_at"] = parse_time(event["time"])
                elif kind == "case.reopened":
                    row["decided_at"] = None
                elif kind == "case.suspended":
                    row["suspended_at"] = parse_time(event["time"])
                elif kind == "case.resumed" and row["suspended_at"]:
                    pause = parse_time(event["time"]) - row["suspended_at"]
                    row["deadline"] += max(pause, dt.timedelta(0))
                    row["suspended_at"] = None
                elif kind == "case.deadline_extended":
                    if "deadline" in data:
                        row["deadline"] = parse_time(data["deadline"])
                    else:
                        row["extend"] = data["by"]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        for case, row in cases.items():
            out.writerow([case, row["track"], row["location"], row["deadline"].isoformat(),
                          row.get("extend", ""), "t" if row["suspended_at"] else "f",
                          row["decided_at"].isoformat() if row["decided_at"] else ""])
    return len(cases)


def parse_time(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def add_months(t, months):
    month = t.month - 1 + months
    year, month = t.year + month // 12, month % 12 + 1
    for day in (t.day, 30, 29, 28):
        try:
            return t.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise ValueError(t)


class Postgres:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres")
        os.chmod(workdir, 0o755)
        self.port = free_port()
        bindir = "/usr/lib/postgresql/15/bin"
        self.as_postgres([f"{bindir}/initdb", "-D", self.dir + "/data", "-A", "trust", "-U", "postgres"])
        self.process = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", f"{bindir}/postgres", "-D", self.dir + "/data",
             "-p", str(self.port), "-k", self.dir, "-c", "listen_addresses=127.0.0.1",
             "-c", "shared_buffers=256MB", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "postgres.log"), "w"),
        )
        for _ in range(600):
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def as_postgres(self, argv):
        subprocess.run(["runuser", "-u", "postgres", "--"] + argv, check=True,
                       stdout=subprocess.DEVNULL)

    def sql(self, text):
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", self.dsn, "-c", text], check=True,
                       stdout=subprocess.DEVNULL)

    def postmaster_pid(self):
        return self.process.pid

    def stop(self):
        self.as_postgres(["/usr/lib/postgresql/15/bin/pg_ctl", "-D", self.dir + "/data", "stop",
                          "-m", "fast"])
        self.process.wait(timeout=60)


QUERY_EXPORTER_CONFIG = """
databases:
  cases:
    dsn: {dsn}
metrics:
  sql_cases_open:
    type: gauge
    description: Open cases
    labels: [track, location]
  sql_cases_overdue:
    type: gauge
    description: Open, non-suspended cases past their deadline
    labels: [track, location]
queries:
  backlog:
    databases: [cases]
    metrics: [sql_cases_open, sql_cases_overdue]
    # No interval: run at every scrape, so the figures are as fresh as the scrape.
    sql: |
      SELECT track, location,
             count(*) AS sql_cases_open,
             count(*) FILTER (WHERE NOT suspended AND deadline < now()) AS sql_cases_overdue
      FROM cases WHERE decided_at IS NULL
      GROUP BY track, location
"""


def scrape_vs_sql(events_file, workdir, daemon, scrapes):
    log("postgres: loading the cases")
    csv_path = os.path.join(workdir, "cases.csv")
    count = cases_csv(events_file, csv_path)
    os.chmod(csv_path, 0o644)
    pg = Postgres(workdir)
    try:
        pg.sql("CREATE TABLE cases (id text PRIMARY KEY, track text, location text, "
               "deadline timestamptz, extend interval, suspended boolean, decided_at timestamptz)")
        pg.sql(f"\\copy cases FROM '{csv_path}' WITH (FORMAT csv, NULL '')")
        pg.sql("UPDATE cases SET deadline = deadline + extend WHERE extend IS NOT NULL")
        pg.sql("CREATE INDEX cases_open ON cases (track, location, deadline) "
               "WHERE decided_at IS NULL")
        pg.sql("ANALYZE cases")
        config = os.path.join(workdir, "query-exporter.yaml")
        with open(config, "w") as f:
            f.write(QUERY_EXPORTER_CONFIG.format(dsn=pg.dsn))
        qe_port = free_port()
        exporter = subprocess.Popen(
            ["query-exporter", "--config", config, "-H", "127.0.0.1", "-p", str(qe_port),
             "-L", "warning"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "qe.log"), "w"),
        )
        try:
            qe_url = f"http://127.0.0.1:{qe_port}/metrics"
            wait_for(qe_url)
            # Warm both.
            for _ in range(3):
                get(qe_url)
                get(daemon.url + "/metrics")
            sql_cpu = lambda: tree_cpu(exporter.pid) + tree_cpu(pg.postmaster_pid())  # noqa: E731
            sql_lat, sql_cpu_per, sql_body = scrape_series(qe_url, scrapes, 0.05, sql_cpu)
            b_lat, b_cpu_per, b_body = scrape_series(
                daemon.url + "/metrics", scrapes, 0.05, lambda: cpu_seconds(daemon.process.pid))
            sql_open = sum_family(sql_body, "sql_cases_open")
            b_open = sum_family(b_body, "backlogd_cases_open")
            figure("cases_in_table", count)
            figure("open_cases", f"sql {sql_open:.0f}, backlogd {b_open:.0f}")
            figure("overdue_cases", f"sql {sum_family(sql_body, 'sql_cases_overdue'):.0f}, "
                   f"backlogd {sum_family(b_body, 'backlogd_cases_overdue'):.0f}")
            figure("backlogd_metrics_series", sum(
                1 for line in b_body.splitlines() if line and not line.startswith("#")))
            for name, lat, cpu in (("sql_exporter", sql_lat, sql_cpu_per),
                                   ("backlogd", b_lat, b_cpu_per)):
                figure(f"{name}_scrape_ms", f"p50 {percentile(lat, 0.5):.2f}, "
                       f"p99 {percentile(lat, 0.99):.2f}", f"{scrapes} scrapes")
                figure(f"{name}_cpu_ms_per_scrape", f"{cpu * 1000:.2f}")
            ratios = {
                "scrape_latency_p50_ratio": percentile(sql_lat, 0.5) / percentile(b_lat, 0.5),
                "scrape_cpu_ratio": sql_cpu_per / max(b_cpu_per, 1e-9),
            }
            figure("sql_vs_backlogd_scrape_latency_p50", f"{ratios['scrape_latency_p50_ratio']:.1f}x")
            figure("sql_vs_backlogd_cpu_per_scrape", f"{ratios['scrape_cpu_ratio']:.1f}x",
                   "CPU-time resolution is 10 ms; many scrapes are averaged")
            staleness(pg, qe_url, daemon)
            return ratios
        finally:
            exporter.terminate()
            exporter.wait(timeout=30)
    finally:
        pg.stop()


def staleness(pg, qe_url, daemon):
    """One case whose deadline passes 2 s from now, in both; each is polled every 10 ms until its
    overdue count rises. Reports how long after the deadline each showed it."""
    deadline = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=3)
    pg.sql("INSERT INTO cases VALUES ('stale-probe', 'asylum', 'probe', "
           f"'{deadline.isoformat()}', NULL, false, NULL)")
    event = {"specversion": "1.0", "id": "stale-probe", "type": "case.registered",
             "source": "peers", "time": dt.datetime.now(dt.timezone.utc).isoformat(),
             "data": {"case": "stale-probe", "track": "asylum", "location": "probe",
                      "deadline": deadline.isoformat()}}
    request = urllib.request.Request(daemon.url + "/v1/events", data=json.dumps(event).encode(),
                                     headers={"Content-Type": "application/cloudevents+json"})
    urllib.request.urlopen(request, timeout=10).read()

    def overdue(url, family):
        return sum(float(line.rsplit(" ", 1)[1]) for line in get(url)[1].splitlines()
                   if line.startswith(family + "{") and 'location="probe"' in line)

    seen = {}
    stop_at = time.time() + 30
    while len(seen) < 2 and time.time() < stop_at:
        for name, url, family in (("sql_exporter", qe_url, "sql_cases_overdue"),
                                  ("backlogd", daemon.url + "/metrics", "backlogd_cases_overdue")):
            if name not in seen and overdue(url, family) >= 1:
                seen[name] = time.time() - deadline.timestamp()
        time.sleep(0.01)
    for name in ("sql_exporter", "backlogd"):
        value = f"{seen[name]:.3f}" if name in seen else "not within 30 s"
        figure(f"{name}_staleness_seconds", value, "deadline passed → overdue on a scrape")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    with open(args.events) as f:
        events = sum(1 for _ in f)
    figure("events", events)
    workdir = tempfile.mkdtemp(prefix="backlogd-peers-")
    daemon = None
    try:
        daemon, _ = ingest_vs_mtail(args.binary, args.events, events, workdir, args.batch)
        scrape_vs_sql(args.events, workdir, daemon, args.scrapes)
    except BaseException:
        log(f"kept {workdir} for a look at the logs")
        raise
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if daemon:
            daemon.stop()


if __name__ == "__main__":
    main()
