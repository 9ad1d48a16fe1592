"""`make run-fleet`: the fleet of docs/deploy.md on one machine, on PostgreSQL, for trying it.

Creates the database if it is missing, migrates it and loads the demo once, then starts

- web: `mykey serve --workers 2` (two server processes on one port, MYKEY_BACKGROUND=workers:
  they serve requests and nothing else),
- worker-1, worker-2: `mykey worker` (bulk grants, the daily work),
- checkpointer: `mykey log checkpointer` (a signed checkpoint every 10 s),

each line of their output prefixed with its name. Ctrl-C (or SIGTERM) stops them all; a process
that dies is reported and the others stop too, as a supervisor would page someone.

    python deploy/run_fleet.py [--database-url URL] [--host H] [--port P]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/mykey_fleet"
MYKEY = Path(sys.executable).parent / "mykey"


def ensure_database(url: str) -> None:
    """CREATE DATABASE, if the server has none of that name."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or ""
    admin = parsed.set(drivername="postgresql", database="postgres")
    try:
        with psycopg.connect(
            admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=5
        ) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is None:
                conn.execute(f'CREATE DATABASE "{name}"')
                print(f"fleet: created database {name} / データベース {name} を作成しました")
    except psycopg.OperationalError as exc:
        sys.exit(f"fleet: PostgreSQL is not reachable at {admin.render_as_string()}: {exc}")


def pipe(name: str, stream: IO[bytes]) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>12} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("MYKEY_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    options = parser.parse_args()
    url = options.database_url
    if not url.startswith("postgresql"):
        sys.exit("fleet: the fleet runs on PostgreSQL: give --database-url postgresql+psycopg://…")
    ensure_database(url)
    env = {**os.environ, "MYKEY_DATABASE_URL": url, "MYKEY_BACKGROUND": "workers"}
    for step in (["migrate"], ["demo"]):
        subprocess.run([str(MYKEY), *step], env=env, check=True)
    roles = {
        "web": ["serve", "--workers", "2", "--host", options.host, "--port", options.port],
        "worker-1": ["worker"],
        "worker-2": ["worker"],
        "checkpointer": ["log", "checkpointer", "--every", "10"],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, args in roles.items():
        process = subprocess.Popen(
            [str(MYKEY), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert process.stdout is not None
        threading.Thread(target=pipe, args=(name, process.stdout), daemon=True).start()
        processes[name] = process
    print(
        f"fleet: http://{options.host}:{options.port} — web ×2, worker ×2, checkpointer on"
        f" {url.rsplit('/', 1)[-1]}. Ctrl-C stops it. / Ctrl-C で停止します。",
        flush=True,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.is_set():
            ended = [n for n, p in processes.items() if p.poll() is not None]
            if ended:
                print(f"fleet: {', '.join(ended)} ended; stopping the others", flush=True)
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    print("fleet: stopped / 停止しました", flush=True)


if __name__ == "__main__":
    main()
