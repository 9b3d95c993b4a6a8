"""`make bench`: decide, ingest and recompute, each against the best this machine does in the
same run (ratios, since absolute times on a shared machine are noise).

    python -m tests.benchmarks.run [--quick] [--only decide|ingest]

Needs PostgreSQL and Redis (DATABASE_URL / REDIS_URL, defaults on localhost) and wrk. Uses a
database of its own (BENCH_DATABASE, default attune_bench), recreated on every run. Prints a
table and writes tests/benchmarks/results/latest.json.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PORT = int(os.environ.get("BENCH_PORT", "8765"))
FULL = {
    "users": 1000,
    "wrk_seconds": 20,
    "runs": 3,
    "ingest_batches": 20,
    "outcomes": 1_000_000,
    "naive": 100_000,
    # New outcomes before a measured hourly run: about twice this table's average hour
    # (1,000,000 outcomes over 12 weeks is ~500 an hour), and a heavy hour for comparison.
    "hourly": 1_000,
    "hourly_heavy": 10_000,
    "data_users": 5000,
    "minute": 1_000,
}
QUICK = {
    "users": 50,
    "wrk_seconds": 3,
    "runs": 1,
    "ingest_batches": 2,
    "outcomes": 20_000,
    "naive": 5_000,
    "hourly": 50,
    "hourly_heavy": 500,
    "data_users": 200,
    "minute": 1_000,
}


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def configure_environment() -> dict[str, str]:
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/attune")
    name = os.environ.get("BENCH_DATABASE", "attune_bench")
    database_url = re.sub(r"/[^/]*$", f"/{name}", server)
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "DJANGO_SECRET_KEY": "bench-only-secret-key-8f3a1c9e7b5d2f4a6c8e0b1d3f5a7c9e1b3d5f7a",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SEED_ADMIN_PASSWORD": "bench-admin",
        "SEED_DEMO_PASSWORD": "bench-demo",
    }
    os.environ.update(env)
    return env


def recreate_database(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    name = database_url.rsplit("/", 1)[1]
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def manage(*args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL
    )


# --- Decide ---------------------------------------------------------------------------------


def prepare_decide_users(count: int) -> list[str]:
    """Users with an assignment in the MISSION A/B test and their configs: the warm path."""
    import numpy as np
    from rest_framework.authtoken.models import Token

    from experiments.services.decisions import decision_make
    from personalization.models import User

    users = User.objects.bulk_create(
        [User(username=f"decider-{i}", password="!") for i in range(count)]
    )
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    rng = np.random.default_rng(1)
    for index, user in enumerate(users, start=1):
        decision_make(user=user, context="MISSION", rng=rng)
        if index % 200 == 0:
            say(f"  warm decisions {index}/{count}")
    return [t.key for t in tokens]


def start_gunicorn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    workers = str(2 * (os.cpu_count() or 1))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            workers,
            "--log-level",
            "warning",
        ],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        start_new_session=True,
    )
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start")


WRK_SCRIPT = """
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local counter = 0
local path = os.getenv("BENCH_PATH")
request = function()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  return wrk.format("POST", path,
    {["Authorization"] = "Token " .. token, ["Content-Type"] = "application/json"},
    '{"context": "MISSION"}')
end
"""


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(path: str, seconds: int, script: Path | None, tokens_file: Path | None) -> dict[str, float]:
    command = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency"]
    if script:
        command += ["-s", str(script)]
    env = {**os.environ, "BENCH_TOKENS": str(tokens_file or ""), "BENCH_PATH": path}
    output = subprocess.run(
        command + [f"http://127.0.0.1:{PORT}{path}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{path}: {errors.group(1)} error responses\n{output}")
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def bench_decide(sizes: dict[str, int], tokens: list[str], workdir: Path) -> dict[str, Any]:
    tokens_file = workdir / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    script = workdir / "decide.lua"
    script.write_text(WRK_SCRIPT)
    limits, decides, floors = [], [], []
    for run in range(sizes["runs"]):
        say(
            f"decide run {run + 1}/{sizes['runs']}: baseline endpoint, decide's statements alone, "
            f"then the decide call ({sizes['wrk_seconds']} s each)"
        )
        limits.append(wrk("/bench/one-query/", sizes["wrk_seconds"], None, None))
        floors.append(wrk("/bench/decide-floor/", sizes["wrk_seconds"], script, tokens_file))
        decides.append(wrk("/api/v1/decisions/", sizes["wrk_seconds"], script, tokens_file))
    limit = {k: statistics.median(r[k] for r in limits) for k in limits[0]}
    decide = {k: statistics.median(r[k] for r in decides) for k in decides[0]}
    floor = {k: statistics.median(r[k] for r in floors) for k in floors[0]}
    return {
        # decide's two statements in a bare view: what decide would reach if the rest of
        # its Python cost nothing.
        "runs_rps": {
            "limit": [r["rps"] for r in limits],
            "floor": [r["rps"] for r in floors],
            "decide": [r["rps"] for r in decides],
        },
        "floor_rps": floor["rps"],
        "floor_ratio": floor["rps"] / limit["rps"],
        "decide_rps": decide["rps"],
        "decide_p50_ms": decide["p50_ms"],
        "decide_p99_ms": decide["p99_ms"],
        "limit_rps": limit["rps"],
        "limit_p99_ms": limit["p99_ms"],
        "ratio": decide["rps"] / limit["rps"],
        "targets": {
            "ratio >= 0.5": decide["rps"] / limit["rps"] >= 0.5,
            "p99 < 50 ms": decide["p99_ms"] < 50,
        },
    }


# --- Ingest ---------------------------------------------------------------------------------


def bench_ingest(sizes: dict[str, int], tokens: list[str]) -> dict[str, Any]:
    from django.db import connection

    from outcomes.models import Outcome

    batches = sizes["ingest_batches"]
    token = tokens[0]
    payloads = [
        json.dumps(
            [
                {
                    "event_id": f"ingest-{run}-{b}-{i}",
                    "context": "MISSION",
                    "outcome_type": "MISSION_COMPLETED",
                    "retention_score": (i % 100) / 100,
                    "completion_rate": ((i * 7) % 100) / 100,
                }
                for i in range(1000)
            ]
        ).encode()
        for run in range(sizes["runs"])
        for b in range(batches)
    ]
    api_rates, copy_rates = [], []
    for run in range(sizes["runs"]):
        say(
            f"ingest run {run + 1}/{sizes['runs']}: {batches} batches of 1,000 through the API, then COPY"
        )
        mine = payloads[run * batches : (run + 1) * batches]
        started = time.perf_counter()
        errors: list[str] = []

        def send(chunk: list[bytes]) -> None:
            for body in chunk:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{PORT}/api/v1/outcomes/",
                    data=body,
                    headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=120) as response:
                    if response.status != 201:
                        errors.append(str(response.status))

        threads = [threading.Thread(target=send, args=(mine[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        api_rates.append(batches * 1000 / (time.perf_counter() - started))
        if errors:
            raise RuntimeError(f"ingest errors: {errors[:3]}")
        # The limit: psycopg COPY of the same rows into a table shaped like the outcomes table.
        rows = list(
            Outcome.objects.filter(event_id__startswith=f"ingest-{run}-").values_list(
                "user_id",
                "event_id",
                "payload_hash",
                "context",
                "personalization_applied",
                "strategy_variant",
                "outcome_type",
                "occurred_at",
                "retention_score",
                "completion_rate",
                "reward",
                "content_type",
                "created_at",
                "updated_at",
            )
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE outcomes_outcome INCLUDING ALL)"
            )
            started = time.perf_counter()
            with cursor.connection.cursor().copy(
                "COPY bench_copy (user_id, event_id, payload_hash, context, personalization_applied, "
                "strategy_variant, outcome_type, occurred_at, retention_score, completion_rate, "
                "reward, content_type, created_at, updated_at) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            copy_rates.append(len(rows) / (time.perf_counter() - started))
            cursor.execute("DROP TABLE bench_copy")
    api, limit = statistics.median(api_rates), statistics.median(copy_rates)
    return {
        "api_outcomes_per_s": api,
        "copy_outcomes_per_s": limit,
        "ratio": api / limit,
        "targets": {"ratio >= 0.5": api / limit >= 0.5},
    }


# --- Recompute ------------------------------------------------------------------------------

RECOMPUTE_SNIPPET = """
import json, resource, sys, time
import django
django.setup()
from django.db import connection
name = sys.argv[1]
started = time.perf_counter()
if name == "group_by":
    with connection.cursor() as cursor:
        cursor.execute("SELECT config_id, count(*), sum(reward), sum(reward * reward) FROM outcomes_outcome GROUP BY config_id")
        cursor.fetchall()
elif name == "recompute_bandit_rewards":
    from outcomes.services.rewards import bandit_rewards_recompute
    bandit_rewards_recompute(rebuild=True)
elif name == "minute_rewards":
    from outcomes.services.rewards import bandit_rewards_recompute
    from tests.benchmarks.data import add_history
    add_history(decisions=int(sys.argv[2]), tag=sys.argv[3], weeks=0, offset=int(sys.argv[4]))
    started = time.perf_counter()
    print(json.dumps(bandit_rewards_recompute()), file=sys.stderr)
elif name == "rebuild_changes":
    from outcomes.services.rewards import bandit_rewards_recompute
    updated = bandit_rewards_recompute(rebuild=True)["updated"]
elif name == "grow":
    from tests.benchmarks.data import add_history
    add_history(decisions=int(sys.argv[2]), tag=sys.argv[3])
elif name == "compute_effectiveness_windows":
    from django.conf import settings
    from outcomes.models import Outcome
    from outcomes.services.effectiveness import effectiveness_windows_compute
    from outcomes.windows import WindowIndex
    windows = set(Outcome.objects.annotate(w=WindowIndex("occurred_at", days=settings.EFFECTIVENESS_WINDOW_DAYS)).values_list("w", flat=True).distinct().order_by())
    started = time.perf_counter()
    effectiveness_windows_compute(windows=windows)
elif name == "hourly_effectiveness":
    from outcomes.services.effectiveness import effectiveness_windows_compute
    from tests.benchmarks.data import add_recent
    add_recent(outcomes=int(sys.argv[2]), tag=sys.argv[3])
    started = time.perf_counter()
    result = effectiveness_windows_compute()
    print(json.dumps(result), file=sys.stderr)
elif name == "evaluate_experiments":
    from outcomes.services.evaluation import experiments_evaluate_due
    experiments_evaluate_due()
elif name == "naive_rewards":
    from collections import defaultdict
    from experiments.models import Decision, StrategyConfig
    from outcomes.models import Outcome
    limit = int(sys.argv[2])
    totals = defaultdict(lambda: [0, 0.0])
    for outcome in Outcome.objects.order_by("id")[:limit].iterator():
        if outcome.config_id:
            totals[outcome.config_id][0] += 1
            totals[outcome.config_id][1] += outcome.reward
    for config in StrategyConfig.objects.filter(pk__in=list(totals)):
        n, total = totals[config.pk]
        config.times_selected = Decision.objects.filter(config=config).count()
        config.times_rewarded, config.total_reward, config.avg_reward = n, total, total / n
        config.save()
seconds = time.perf_counter() - started
figures = {"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
if name == "rebuild_changes":
    figures["updated"] = updated
print(json.dumps(figures))
"""


def measure(name: str, *args: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", RECOMPUTE_SNIPPET, name, *args],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def median_of(runs: int, name: str, *args: str) -> dict[str, float]:
    # "{run}" in an argument becomes the run's number (e.g. fresh event ids per run).
    samples = [measure(name, *(a.format(run=run) for a in args)) for run in range(runs)]
    return {
        "seconds": statistics.median(s["seconds"] for s in samples),
        "peak_mb": max(s["peak_mb"] for s in samples),
    }


def bench_recompute(sizes: dict[str, int]) -> dict[str, Any]:
    from outcomes.models import Outcome
    from tests.benchmarks.data import generate

    say(
        f"generating {sizes['outcomes']:,} outcomes for {sizes['data_users']:,} users in PostgreSQL"
    )
    started = time.perf_counter()
    generate(users=sizes["data_users"], outcomes=sizes["outcomes"])
    say(f"  {Outcome.objects.count():,} outcomes in {time.perf_counter() - started:.1f} s")
    result: dict[str, Any] = {"outcomes": Outcome.objects.count()}
    group_by = median_of(sizes["runs"], "group_by")
    result["group_by_s"] = group_by["seconds"]
    for name in (
        "recompute_bandit_rewards",
        "compute_effectiveness_windows",
        "evaluate_experiments",
    ):
        say(f"recompute: {name} ({sizes['runs']} run(s))")
        figure = median_of(sizes["runs"], name)
        result[name] = {**figure, "ratio": figure["seconds"] / group_by["seconds"]}
    # The scheduled run: an hour of new outcomes arrives, then the hourly task runs.
    for name, count in (
        ("hourly_effectiveness", sizes["hourly"]),
        ("hourly_effectiveness_heavy", sizes["hourly_heavy"]),
    ):
        say(f"recompute: {name} after {count:,} new outcomes ({sizes['runs']} run(s))")
        figure = median_of(sizes["runs"], "hourly_effectiveness", str(count), f"{name}{{run}}-")
        result[name] = {
            **figure,
            "ratio": figure["seconds"] / group_by["seconds"],
            "new_outcomes": count,
        }
    measured = (
        "recompute_bandit_rewards",
        "compute_effectiveness_windows",
        "hourly_effectiveness",
        "hourly_effectiveness_heavy",
        "evaluate_experiments",
    )
    result["targets"] = {
        f"{name} <= 3x": result[name]["ratio"] <= 3
        for name in ("recompute_bandit_rewards", "hourly_effectiveness")
    } | {"peak < 300 MB": all(result[n]["peak_mb"] < 300 for n in measured)}
    say(f"the naive way: a per-row ORM loop over {sizes['naive']:,} outcomes")
    naive = measure("naive_rewards", str(sizes["naive"]))
    result["naive_loop"] = {
        **naive,
        "outcomes": sizes["naive"],
        "outcomes_per_s": sizes["naive"] / naive["seconds"],
    }
    sql_per_s = result["outcomes"] / result["recompute_bandit_rewards"]["seconds"]
    result["naive_loop"]["sql_outcomes_per_s"] = sql_per_s
    result["naive_loop"]["slowdown"] = sql_per_s / result["naive_loop"]["outcomes_per_s"]
    result["growth"] = bench_growth(sizes)
    result["targets"]["per-minute run at 10x the history <= 1.5x"] = (
        result["growth"]["ratio"] <= 1.5
    )
    result["targets"]["incremental equals a rebuild"] = result["growth"]["rebuild_changes"] == 0
    return result


def bench_growth(sizes: dict[str, int]) -> dict[str, Any]:
    """The per-minute reward run after `minute` new decisions and outcomes, on the table as
    generated and after it grew tenfold: incremental, it should cost the same. Then a rebuild
    must change nothing (the incremental figures equal it)."""
    from outcomes.models import Outcome

    minute, runs = sizes["minute"], sizes["runs"]
    measure("minute_rewards", "0", "warm-", "0")  # the first incremental run after rebuilds
    say(f"recompute: per-minute reward run after {minute:,} new decisions and outcomes")
    before = median_of(runs, "minute_rewards", str(minute), "min-a{run}-", "{run}")
    small = Outcome.objects.count()
    grow = small * 9
    say(f"growing the history tenfold: {grow:,} more decisions and outcomes")
    started = time.perf_counter()
    step = 1_000_000
    for offset in range(0, grow, step):
        measure("grow", str(min(step, grow - offset)), f"grow{offset}-")
        say(f"  {min(offset + step, grow):,}/{grow:,} ({time.perf_counter() - started:.0f} s)")
    large = Outcome.objects.count()
    say(f"recompute: per-minute reward run on {large:,} outcomes")
    after = median_of(runs, "minute_rewards", str(minute), "min-b{run}-", "{run}")
    say("recompute: a rebuild after the incremental runs")
    rebuild = measure("rebuild_changes")
    return {
        "new_rows": minute,
        "small_table": small,
        "large_table": large,
        "small": before,
        "large": after,
        "ratio": after["seconds"] / before["seconds"],
        "rebuild_seconds": rebuild["seconds"],
        "rebuild_changes": int(rebuild["updated"]),
    }


# --- Report ---------------------------------------------------------------------------------


TABLE_HEAD = [
    "| figure | measured | limit (same run) | ratio | target |",
    "| --- | --- | --- | --- | --- |",
]


def decide_row(d: dict[str, Any]) -> str:
    return f"| decide, requests/s | {d['decide_rps']:.0f} (p50 {d['decide_p50_ms']:.1f} ms, p99 {d['decide_p99_ms']:.1f} ms) | {d['limit_rps']:.0f} (one-query view) | {d['ratio']:.2f} | ≥ 0.5, p99 < 50 ms |"


def floor_row(d: dict[str, Any]) -> str:
    return f"| decide's two statements alone, in a bare view, requests/s | {d['floor_rps']:.0f} | {d['limit_rps']:.0f} (one-query view) | {d['floor_ratio']:.2f} | — (the ceiling of decide's ratio) |"


def decide_table(d: dict[str, Any]) -> str:
    return "\n".join([*TABLE_HEAD, decide_row(d), floor_row(d)])


def ingest_row(i: dict[str, Any]) -> str:
    return f"| ingest, outcomes/s | {i['api_outcomes_per_s']:.0f} | {i['copy_outcomes_per_s']:.0f} (COPY) | {i['ratio']:.2f} | ≥ 0.5 |"


def table(results: dict[str, Any]) -> str:
    d, i, r = results["decide"], results["ingest"], results["recompute"]
    lines = [
        *TABLE_HEAD,
        decide_row(d),
        floor_row(d),
        ingest_row(i),
    ]
    labels = {
        "recompute_bandit_rewards": (
            "recompute_bandit_rewards --all (a rebuild)",
            "≤ 3×, < 300 MB",
        ),
        "hourly_effectiveness": (
            "compute_effectiveness_windows, hourly run after "
            f"{r['hourly_effectiveness']['new_outcomes']:,} new outcomes",
            "≤ 3×, < 300 MB",
        ),
        "hourly_effectiveness_heavy": (
            "compute_effectiveness_windows, hourly run after "
            f"{r['hourly_effectiveness_heavy']['new_outcomes']:,} new outcomes",
            "< 300 MB",
        ),
        "compute_effectiveness_windows": (
            "compute_effectiveness_windows --all (every window, every user)",
            "< 300 MB",
        ),
        "evaluate_experiments": ("evaluate_experiments", "< 300 MB"),
    }
    for name, (label, target) in labels.items():
        lines.append(
            f"| {label}, table of {r['outcomes']:,} outcomes | {r[name]['seconds']:.2f} s, peak {r[name]['peak_mb']:.0f} MB | {r['group_by_s']:.2f} s (GROUP BY) | {r[name]['ratio']:.1f}× | {target} |"
        )
    g = r["growth"]
    lines.append(
        f"| `recompute_bandit_rewards` per minute, after {g['new_rows']:,} new decisions and outcomes | {g['small']['seconds']:.3f} s on {g['small_table']:,} outcomes → {g['large']['seconds']:.3f} s on {g['large_table']:,} | the same run on 1/10 of the history | {g['ratio']:.2f}× | ≤ 1.5× |"
    )
    lines.append(
        f"| a rebuild after the incremental runs | {g['rebuild_seconds']:.2f} s, {g['rebuild_changes']:,} configs changed | — | — | 0 changed |"
    )
    n = r["naive_loop"]
    lines.append(
        f"| the naive way: per-row ORM loop | {n['outcomes_per_s']:.0f} outcomes/s | {n['sql_outcomes_per_s']:.0f} outcomes/s (SQL) | {n['slowdown']:.0f}× slower | — |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, targets not enforced")
    parser.add_argument(
        "--only",
        choices=["decide", "ingest"],
        help="run only this part (its table row and targets; the others are skipped)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.only != "ingest" and not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    env = configure_environment()
    say(f"database {env['DATABASE_URL']} (recreated), sizes {sizes}")
    recreate_database(env["DATABASE_URL"])
    manage("migrate", "--no-input")
    manage("collectstatic", "--no-input")  # gunicorn serves static files as in production
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from experiments.services.strategies import strategy_catalog_load
    from tests.experiments.factories import make_experiment

    strategy_catalog_load(path=BASE_DIR / "fixtures" / "strategies.json")
    make_experiment(context="MISSION", name="Bench A/B")
    say(f"preparing {sizes['users']} users with assignments and configs")
    tokens = prepare_decide_users(sizes["users"])
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory() as workdir:
        server = start_gunicorn(env)
        try:
            if args.only != "ingest":
                results["decide"] = bench_decide(sizes, tokens, Path(workdir))
            if args.only != "decide":
                results["ingest"] = bench_ingest(sizes, tokens)
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.json").write_text(
        json.dumps(results, indent=2)
    )  # kept if a later part fails
    parts = [args.only] if args.only else ["decide", "ingest", "recompute"]
    if not args.only:
        results["recompute"] = bench_recompute(sizes)
        (RESULTS_DIR / "latest.json").write_text(json.dumps(results, indent=2))
    print()
    if not args.only:
        print(table(results))
    elif args.only == "decide":
        print(decide_table(results["decide"]))
    else:
        print("\n".join([*TABLE_HEAD, ingest_row(results["ingest"])]))
    print(f"\nresults: {RESULTS_DIR / 'latest.json'}")
    missed = [name for part in parts for name, ok in results[part]["targets"].items() if not ok]
    if missed:
        print(
            f"targets missed: {', '.join(missed)}"
            + (" (quick mode: not enforced)" if args.quick else "")
        )
    return 1 if missed and not args.quick and os.environ.get("BENCH_ENFORCE") else 0


if __name__ == "__main__":
    sys.exit(main())
