"""`agentmeter prompt` and `agentmeter statusline`: what the segment and the line say, their colours, their
fast paths, and `statusline --install` editing Claude Code's settings.json without losing anything."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentmeter.commands import prompt
from agentmeter.commands.statusline import build_line, parse_payload, render_statusline, session_cost
from agentmeter.core.clock import FixedClock, SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.core.timezone import resolve_tz
from agentmeter.home.config import Budget, Caps, Config
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from agentmeter.ledger import sync as ledger_sync
from conftest import REPO, run_cli

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday
FIXTURE = REPO / "tests" / "fixtures" / "claude_statusline.json"
PAYLOAD = json.loads(FIXTURE.read_text())
ASID = PAYLOAD["session_id"]
HEAVY = ("typer", "rich", "aiohttp", "genai_prices")


def seed(
    rows: list[tuple[int, float]],
    *,
    tz: str = "UTC",
    session: str = "s1",
    asid: str | None = ASID,
    tokens: int = 150,
    first: int = 0,
) -> None:
    """Requests of `usd` each at `ms`, in one agentmeter session that saw Claude Code session `asid`."""
    ledger = open_ledger(get_paths().ensure().ledger, tz=resolve_tz(tz))
    if ledger.get_session(session) is None:
        ledger.create_session(
            {
                "id": session,
                "token_hash": f"h-{session}",
                "agent": "claude",
                "agent_session_id": asid,
                "started_at": rows[0][0] if rows else 0,
            }
        )
    for i, (ms, usd) in enumerate(rows, first):
        ledger.insert_request(
            RequestRecord(
                request_id=f"{session}-r{i}",
                session_id=session,
                started_at_ms=ms,
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested="claude-sonnet-4-5",
                model_used="claude-sonnet-4-5",
                stream=True,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=tokens - 50, output_tokens=50),
                cost_usd=usd,
                price_source="genai-prices",
                agent="claude",
                agent_session_id=asid,
            )
        )
    ledger.close()


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def config(**caps) -> Config:
    return Config(budget=Budget(timezone="UTC", caps=Caps(**caps)))


def segment(cfg: Config, *, color: bool = False, shell: str | None = None, clock=None) -> str:
    conn = prompt.connect(get_paths().ledger)
    try:
        return prompt.segment(
            prompt.pick(prompt.window_use(cfg, clock or FixedClock(NOW), conn)), color=color, shell=shell
        )
    finally:
        if conn is not None:
            conn.close()


def write_config(text: str) -> None:
    path = get_paths().ensure().config_file
    path.write_text(text)


# --- prompt ----------------------------------------------------------------------------------------------


def test_prompt_is_empty_without_caps_or_spend():
    r = run_cli("prompt")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    seed([])  # a ledger with nothing spent today: still nothing to say
    assert segment(config()) == ""


def test_prompt_shows_todays_spend_without_a_cap():
    seed([(ms(NOW.replace(hour=9)), 1.234), (ms(NOW.replace(day=24)), 50.0)])  # yesterday does not count
    assert segment(config()) == "$1.23"


@pytest.mark.parametrize(
    ("spent", "text", "stage", "sgr"),
    [
        (4.2, "$4.20/$20 21%", "ok", "32"),  # green
        (17.0, "$17.00/$20 85%", "alert", "33"),  # yellow
        (19.5, "$19.50/$20 98%", "downgrade", "35"),  # magenta
        (23.0, "$23.00/$20 115%", "blocked", "31"),  # red
    ],
)
def test_prompt_day_cap_coloured_by_stage(spent, text, stage, sgr):
    seed([(ms(NOW.replace(hour=9)), spent)])
    conn = prompt.connect(get_paths().ledger)
    [day, _week, _month] = prompt.window_use(config(daily_usd=20), FixedClock(NOW), conn)
    conn.close()
    assert day.stage == stage
    assert segment(config(daily_usd=20)) == text
    assert segment(config(daily_usd=20), color=True) == f"\033[{sgr}m{text}\033[0m"


def test_prompt_marks_colour_codes_for_the_line_editor():
    seed([(ms(NOW.replace(hour=9)), 4.2)])
    cfg = config(daily_usd=20)
    # bash/readline: \001 \002 around invisible bytes (PS1's \[ \] are not read in a command's output)
    assert segment(cfg, color=True, shell="bash") == "\001\033[32m\002$4.20/$20 21%\001\033[0m\002"
    # zsh: %{ %} around them, and a literal % doubled
    assert segment(cfg, color=True, shell="zsh") == "%{\033[32m%}$4.20/$20 21%%%{\033[0m%}"
    assert segment(cfg, color=False, shell="zsh") == "$4.20/$20 21%%"


def test_prompt_shows_the_window_nearest_its_cap():
    seed([(ms(NOW.replace(hour=9)), 2.0), (ms(NOW.replace(day=23)), 70.0)])  # Monday of this week
    # day 2/20 = 10 %, week 72/80 = 90 % (alert): the week is what the developer needs to see
    assert segment(config(daily_usd=20, weekly_usd=80, monthly_usd=1000)) == "wk $72.00/$80 90%"


def test_prompt_token_cap_and_zero_cap():
    seed([(ms(NOW.replace(hour=9)), 0.5)], tokens=1500)
    assert segment(config(daily_tokens=2000)) == "1.5k/2k tok 75%"
    # a zero cap blocks everything, as the proxy's policy does
    assert segment(config(daily_usd=0), color=True).startswith("\033[31m")


def test_prompt_applies_stricter_team_caps(home):
    seed([(ms(NOW.replace(hour=9)), 4.0)])
    ledger = open_ledger(get_paths().ledger)
    ledger_sync.write_state(
        ledger.conn, {ledger_sync.TEAM_CAPS: json.dumps({"team": {"name": "payments", "daily_usd": 5.0}})}
    )
    ledger.close()
    assert segment(config(daily_usd=20)) == "$4.00/$5 80%"


def test_prompt_cli_reads_config_and_ledger_and_honours_no_color():
    seed([(SystemClock().now_ms(), 4.2)], tz="local")
    write_config("[budget]\ndaily_usd = 20\n")
    r = run_cli("prompt")
    assert r.returncode == 0 and r.stdout == "\033[32m$4.20/$20 21%\033[0m\n", r.stderr
    assert run_cli("prompt", "--no-color").stdout == "$4.20/$20 21%\n"
    assert run_cli("prompt", env={"NO_COLOR": "1"}).stdout == "$4.20/$20 21%\n"
    assert run_cli("prompt", "--shell", "zsh", "--no-color").stdout == "$4.20/$20 21%%\n"
    got = json.loads(run_cli("prompt", "--json").stdout)
    assert got["schema"] == "agentmeter.prompt/1" and got["text"] == "$4.20/$20 21%"
    assert got["window"]["name"] == "day" and got["window"]["stage"] == "ok"
    bad = run_cli("prompt", "--shell", "tcsh")
    assert bad.returncode == 2 and "--shell" in bad.stderr


def test_prompt_cache_follows_the_ledger_and_the_config():
    write_config("[budget]\ndaily_usd = 20\n")
    seed([(SystemClock().now_ms(), 4.2)], tz="local")
    assert run_cli("prompt", "--no-color").stdout == "$4.20/$20 21%\n"
    assert (get_paths().state_dir / "prompt.json").exists()
    seed([(SystemClock().now_ms(), 5.8)], tz="local", first=1)  # the daemon records another request
    assert run_cli("prompt", "--no-color").stdout == "$10.00/$20 50%\n"
    write_config("[budget]\ndaily_usd = 40\n")
    assert run_cli("prompt", "--no-color").stdout == "$10.00/$40 25%\n"
    (get_paths().state_dir / "prompt.json").write_text("{not json")  # a damaged cache is recomputed
    assert run_cli("prompt", "--no-color").stdout == "$10.00/$40 25%\n"


def test_prompt_cache_hit_reads_no_config_and_no_ledger():
    write_config("[budget]\ndaily_usd = 20\n")
    seed([(SystemClock().now_ms(), 4.2)], tz="local")
    run_cli("prompt")
    code = (
        "import sys\nfrom agentmeter.__main__ import main\nrc = main(['prompt', '--no-color'])\n"
        "heavy = ('agentmeter.home.config', 'agentmeter.budget.policy', 'tomllib')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "sys.stderr.write(f'rc={rc} loaded={loaded}\\n')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout == "$4.20/$20 21%\n" and "rc=0 loaded=[]" in r.stderr, r.stderr


@pytest.mark.parametrize("argv", [["prompt"], ["statusline"], ["shell-init", "bash"]])
def test_fast_paths_import_nothing_heavy(argv):
    write_config("[budget]\ndaily_usd = 20\n")
    seed([(SystemClock().now_ms(), 1.0)], tz="local")
    code = (
        "import sys, io\n"
        "sys.stdin = io.StringIO('{}')\n"
        "from agentmeter.__main__ import main\n"
        f"rc = main({argv!r})\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "sys.stderr.write(f'rc={rc} heavy={heavy}\\n')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "rc=0 heavy=[]" in r.stderr, r.stderr


# --- statusline ------------------------------------------------------------------------------------------


def line_for(payload: dict, cfg: Config, environ: dict | None = None, color: bool = False) -> str:
    return render_statusline(payload, cfg, FixedClock(NOW), get_paths().ledger, color=color, environ=environ or {})


def test_statusline_recorded_payload_with_ledger_cost_and_official_limits():
    seed([(ms(NOW.replace(hour=9)), 0.30), (ms(NOW.replace(hour=10)), 0.12)])
    seed([(ms(NOW.replace(hour=11)), 5.0)], session="s2", asid="another-claude-session")
    line = line_for(PAYLOAD, config(daily_usd=20))
    # the session's cost is agentmeter's (0.42), not Claude Code's own estimate (0.023975)
    assert line == "agentmeter │ session $0.42 · today $5.42/$20 27% (est.) │ plan 5h 24% · 7d 41% (official)"


def test_statusline_inside_agentmeter_run_uses_the_wrapped_session():
    seed([(ms(NOW.replace(hour=9)), 0.30)])
    seed([(ms(NOW.replace(hour=10)), 0.70)], session="s2")  # the same Claude session id seen by another session
    assert "session $0.30 " in line_for(PAYLOAD, config(), {"AGENTMETER_SESSION_ID": "s1"})
    assert "session $0.70 " in line_for(PAYLOAD, config(), {"AGENTMETER_SESSION_ID": "s2"})


def test_statusline_falls_back_to_claude_codes_estimate_and_omits_absent_plan_limits():
    payload = {k: v for k, v in PAYLOAD.items() if k != "rate_limits"}  # API-key users get no rate_limits
    assert line_for(payload, config()) == "agentmeter │ session $0.02 (Claude Code's) · today $0.00 (est.)"


def test_statusline_colours_the_budget_and_plan_use():
    seed([(ms(NOW.replace(hour=9)), 19.0)])
    payload = {
        **PAYLOAD,
        "rate_limits": {
            "five_hour": {"used_percentage": 85.0, "resets_at": 1},
            "seven_day": {"used_percentage": 100, "resets_at": 2},
        },
    }
    line = line_for(payload, config(daily_usd=20), color=True)
    assert "\033[35mtoday $19.00/$20 95%\033[0m" in line  # downgrade: magenta
    assert "\033[33m5h 85%\033[0m" in line and "\033[31m7d 100%\033[0m" in line


def test_statusline_shows_a_hot_longer_window_too():
    seed([(ms(NOW.replace(hour=9)), 1.0), (ms(NOW.replace(day=2)), 290.0)])
    line = line_for(PAYLOAD, config(daily_usd=20, monthly_usd=300))
    assert "today $1.00/$20 5% · mo $291.00/$300 97% (est.)" in line


def test_statusline_session_cost_sources():
    assert session_cost(None, {}, 0, None).source == "none"
    assert session_cost(None, {"cost": {"total_cost_usd": 1.5}}, 0, None).usd == 1.5
    assert parse_payload("not json") == {} and parse_payload("[1]") == {} and parse_payload("") == {}
    uses = prompt.window_use(config(), FixedClock(NOW), None)
    line = build_line({}, uses, session_cost(None, {}, 0, None), alert_at=0.8, color=False)
    assert line == "agentmeter │ today $0.00 (est.)"


def test_statusline_cli_never_fails_and_reads_stdin():
    seed([(SystemClock().now_ms(), 0.42)], tz="local")
    r = run_cli("statusline", "--no-color", input=FIXTURE.read_text())
    assert r.returncode == 0
    assert r.stdout == "agentmeter │ session $0.42 · today $0.42 (est.) │ plan 5h 24% · 7d 41% (official)\n"
    r = run_cli("statusline", "--no-color", input="garbage")
    assert r.returncode == 0 and r.stdout == "agentmeter │ today $0.42 (est.)\n"
    write_config("[budget\n")  # a broken config: shown in the line (Claude Code hides stderr, blanks on exit != 0)
    r = run_cli("statusline", input=FIXTURE.read_text())
    assert r.returncode == 0 and r.stdout.startswith("agentmeter: ") and "config.toml" in r.stdout


# --- statusline --install ----------------------------------------------------------------------------------


def claude_env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "userhome"), "CLAUDE_CONFIG_DIR": ""}


def test_statusline_install_keeps_other_settings_and_backs_up(tmp_path):
    settings = tmp_path / "userhome" / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    original = {"model": "opus", "permissions": {"allow": ["Bash(ls:*)"]}, "env": {"FOO": "1"}}
    settings.write_text(json.dumps(original, indent=4))
    r = run_cli("statusline", "--install", env=claude_env(tmp_path))
    assert r.returncode == 0, r.stderr
    got = json.loads(settings.read_text())
    assert {k: got[k] for k in original} == original and list(got)[:3] == list(original)
    assert got["statusLine"]["type"] == "command" and got["statusLine"]["command"].endswith("agentmeter statusline")
    backup = settings.with_name("settings.json.agentmeter-backup")
    assert json.loads(backup.read_text()) == original
    # a second install changes nothing and makes no second backup
    before = settings.read_text()
    r = run_cli("statusline", "--install", env=claude_env(tmp_path))
    assert r.returncode == 0 and "already" in r.stderr and settings.read_text() == before
    assert not settings.with_name("settings.json.agentmeter-backup.1").exists()


def test_statusline_install_refuses_to_replace_another_or_fix_broken_json(tmp_path):
    settings = tmp_path / "cc" / "settings.json"
    settings.parent.mkdir()
    env = {"CLAUDE_CONFIG_DIR": str(settings.parent)}
    theirs = {"statusLine": {"type": "command", "command": "~/.claude/mine.sh"}, "theme": "dark"}
    settings.write_text(json.dumps(theirs))
    r = run_cli("statusline", "--install", env=env)
    assert r.returncode == 2 and "--force" in r.stderr and json.loads(settings.read_text()) == theirs
    r = run_cli("statusline", "--install", "--force", env=env)
    assert r.returncode == 0
    got = json.loads(settings.read_text())
    assert got["theme"] == "dark" and "agentmeter statusline" in got["statusLine"]["command"]
    assert json.loads(settings.with_name("settings.json.agentmeter-backup").read_text()) == theirs
    settings.write_text('{"theme": "dark",')  # half-written JSON is left alone
    r = run_cli("statusline", "--install", env=env)
    assert r.returncode == 2 and "not valid JSON" in r.stderr and settings.read_text() == '{"theme": "dark",'


def test_statusline_install_creates_settings(tmp_path):
    env = claude_env(tmp_path)
    r = run_cli("statusline", "--install", env=env)
    assert r.returncode == 0, r.stderr
    settings = tmp_path / "userhome" / ".claude" / "settings.json"
    assert json.loads(settings.read_text())["statusLine"]["padding"] == 0
