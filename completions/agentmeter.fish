# fish completion for agentmeter. Generated from the CLI by scripts/gen_completions.py (agentmeter completions generate): do not edit.
# Install: agentmeter completions install fish

function __agentmeter_values --argument-names key cur
    switch $key
        case 'run|#0'
            printf '%s\n' 'claude' 'codex' 'gemini' 'copilot' 'opencode' 'qwen' 'aider' 'crush' 'cline' 'kilo' 'droid' 'goose' 'cursor' 'amp'
        case 'report|--by'
            printf '%s\n' 'day' 'week' 'month' 'agent' 'model' 'repo' 'branch' 'session' 'tag' 'subagent' 'commit'
        case 'report|--format'
            printf '%s\n' 'table' 'json' 'csv'
        case 'report|--html'
            __fish_complete_path $cur
        case 'export|--format'
            printf '%s\n' 'focus' 'csv' 'jsonl'
        case 'export|--output'
            __fish_complete_path $cur
        case 'shell-init|#0'
            printf '%s\n' 'bash' 'zsh' 'fish'
        case 'prompt|--shell'
            printf '%s\n' 'bash' 'zsh' 'plain'
        case 'import claude|#0'
            __fish_complete_path $cur
        case 'import codex|#0'
            __fish_complete_path $cur
        case 'import gemini|#0'
            __fish_complete_path $cur
        case 'import copilot|#0'
            __fish_complete_path $cur
        case 'import cursor|#0'
            __fish_complete_path $cur
        case 'collector report|--by'
            printf '%s\n' 'developer' 'team' 'agent' 'repo' 'model' 'day' 'subagent' 'commit' 'tag:'
        case 'collector export|--format'
            printf '%s\n' 'focus' 'audit'
        case 'collector token add|--role'
            printf '%s\n' 'developer' 'lead' 'finance' 'admin'
        case 'collector alerts set|--format'
            printf '%s\n' 'slack' 'json'
        case 'completions generate|--output'
            __fish_complete_path $cur
        case 'completions show|#0'
            printf '%s\n' 'bash' 'zsh' 'fish'
        case 'completions install|#0'
            printf '%s\n' 'bash' 'zsh' 'fish'
        case '*'
            __fish_complete_path $cur
    end
end

function __agentmeter_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l path ''
    set -l expect ''
    set -l npos 0
    set -l names
    set -l cmds
    set -l opts
    set -l valued
    set -l stop 0
    for w in $words[2..-1] ''
        if test -n "$expect"
            set expect ''
            continue
        end
        set names; set cmds; set opts; set valued; set stop 0
        switch $path
        case ''
            set names run sessions agents env audit report export reprice reconcile sync shell-init prompt statusline version demo doctor status top session proxy budget prices import collector keys config completions
            set cmds 'run	Run an agent with every request metered in a session: agentmeter run…' 'sessions	Sessions with their requests, tokens by bucket and cost.' 'agents	List the agents agentmeter can run, whether each is installed and how…' 'env	Open a session and print the environment a tool needs to use it: eval…' 'audit	Cap changes, snoozes and key changes on this machine (who, when, old…' 'report	Spend and tokens by day, week, month, agent, model, repo, branch, ses…' 'export	Export the ledger: FOCUS 1.2 (one row per day × model × token type) o…' 'reprice	Recompute requests'\'' costs from their tokens, each at its own date and…' 'reconcile	Proxy figures against the agents'\'' own logs, per session and day, with…' 'sync	Push daily summaries and session line items (never prompts) to the co…' 'shell-init	Print the shell hook that runs your agents through agentmeter: eval "…' 'prompt	A short budget segment for your prompt ($4.20/$20 21%), coloured by s…' 'statusline	Claude Code'\''s status line: this session'\''s cost, today'\''s budget, and t…' 'version	The version of agentmeter, and the Python it runs on.' 'demo	A complete tour with no agent, no key and no network: simulated provi…' 'doctor	Check the proxy, keys and keyring, agents on PATH, config, ledger int…' 'status	Day, week and month against your caps, with the forecast; today'\''s ses…' 'top	A live view: running sessions and their burn, today and the month aga…' 'session	One session, turn by turn.' 'proxy	The per-user metering proxy on 127.0.0.1.' 'budget	Personal caps: alert at 80 %, cheaper model at 95 %, refusal at 110 %.' 'prices	Where a price comes from, and fresh price data.' 'import	Usage that did not pass through agentmeter: agents'\'' logs, Cursor'\''s ex…' 'collector	The team collector: tokens, reports, caps, FOCUS export, dashboard.' 'keys	Real provider keys for key mode (never shown to the agent).' 'config	The configuration file.' 'completions	Tab completion for bash, zsh and fish.'
            set opts '--version	Print the version and exit.' '-V	Print the version and exit.' '--debug	On an internal error, show the traceback (also AGENTMETER_DEBUG=1). W…' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'run'
            set names 
            set cmds 
            set opts '--budget	A USD cap for this run.' '--tag	K=V attached to the session (repeatable).' '--quiet	No summary on exit.' '-q	No summary on exit.' '--no-downgrade	Never use a cheaper model.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --budget --tag
            set stop 1
        case 'sessions'
            set names 
            set cmds 
            set opts '--since	Only sessions started in the last 7d, 12h, …' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --since
            set stop 0
        case 'agents'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'env'
            set names 
            set cmds 
            set opts '--agent	Only this agent'\''s variables (claude, codex, …).' '--tag	Attach K=V to the session (repeatable).' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --agent --tag
            set stop 0
        case 'audit'
            set names 
            set cmds 
            set opts '--since	From: a date (2026-03-01), an ISO time, or a duration back from now (…' '--until	Up to (exclusive): a date, an ISO time or a duration back.' '--action	Only this action or family: budget, budget.set, budget.snooze, key, k…' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --since --until --action
            set stop 0
        case 'report'
            set names 
            set cmds 
            set opts '--by	Group rows by: day, week, month, agent, model, repo, branch, session,…' '--since	Start: a date (2025-03-01), today, or 30d / 2w (whole local days).' '--until	End, exclusive: a date or a duration back from today.' '--tz	Time zone for days (default: the budget timezone in config).' '--format	Output format.' '--chart	Also draw daily spend with the daily cap (table format).' '--no-chart	Also draw daily spend with the daily cap (table format).' '--html	Write a self-contained HTML report to this file.' '--json	Print JSON (the same as --format json).' '--commits	Only sessions that ended on a commit in this git range (of the reposi…' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --by --since --until --tz --format --html --commits
            set stop 0
        case 'export'
            set names 
            set cmds 
            set opts '--format	focus: FOCUS 1.2 cost rows; csv/jsonl: requests.' '--output	Write here instead of stdout.' '--since	Start: a date (2025-03-01), today, or 30d / 2w (whole local days).' '--until	End, exclusive: a date or a duration back from today.' '--json	One JSON document {schema, rows}: requests, or FOCUS rows with --form…' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --format --output --since --until
            set stop 0
        case 'reprice'
            set names 
            set cmds 
            set opts '--since	Only requests of the last 7d, 12h, …' '--dry-run	Show what would change; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --since
            set stop 0
        case 'reconcile'
            set names 
            set cmds 
            set opts '--session	One session (agentmeter or agent session id).' '--since	How far back: 7d, 12h, …' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --session --since
            set stop 0
        case 'sync'
            set names 
            set cmds 
            set opts '--dry-run	Count what would be pushed; send and write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'shell-init'
            set names 
            set cmds 
            set opts '--install	Add the hook to your shell'\''s rc file, once.' '--refresh	Rewrite the cached hook, then print it.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'prompt'
            set names 
            set cmds 
            set opts '--shell	Mark colour codes for this shell'\''s line editor.' '--no-color	No colour (for starship, which styles it).' '--json	Print JSON.' '--plan	Show the subscription plan window nearest its limit instead.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --shell
            set stop 0
        case 'statusline'
            set names 
            set cmds 
            set opts '--install	Set it as Claude Code'\''s statusLine.' '--force	With --install: replace another statusLine.' '--no-color	No colour.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'version'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'demo'
            set names 
            set cmds 
            set opts '--keep	Keep the demo'\''s throw-away home directory.' '--no-keep	Keep the demo'\''s throw-away home directory.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'doctor'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--repair	Rebuild a damaged ledger from its readable rows (the damaged file is…' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'status'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--watch	Full screen, refreshed as requests land.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'top'
            set names 
            set cmds 
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'session'
            set names show
            set cmds 'show	Every request of a session: model requested and used, tokens, cost, d…'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'session show'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'proxy'
            set names start stop status serve
            set cmds 'start	Start the proxy in the background (no-op when it is already running).' 'stop	Stop the proxy.' 'status	Is the proxy running, where, and which upstreams it relays to.' 'serve	Run the proxy in the foreground (what `start` runs detached).'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'proxy start'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'proxy stop'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'proxy status'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'proxy serve'
            set names 
            set cmds 
            set opts '--port	Port (default: config, AGENTMETER_PORT, 8788).' '--no-quiet	Log only to the log file.' '--quiet	Log only to the log file.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --port
            set stop 0
        case 'budget'
            set names set show test snooze
            set cmds 'set	Write caps to config.toml (comments and layout kept); the running pro…' 'show	Caps and what is spent against them now.' 'test	Replay your history through these caps: when each stage would have fi…' 'snooze	Pause refusals and downgrades for a while (alerts continue).'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'budget set'
            set names 
            set cmds 
            set opts '--daily	USD (20, $20, 20$), or '\''off'\'' to remove the cap.' '--weekly	USD (20, $20, 20$), or '\''off'\'' to remove the cap.' '--monthly	USD (20, $20, 20$), or '\''off'\'' to remove the cap.' '--daily-tokens	Tokens, or '\''off'\'' to remove the cap.' '--weekly-tokens	Tokens, or '\''off'\'' to remove the cap.' '--monthly-tokens	Tokens, or '\''off'\'' to remove the cap.' '--five-hour	Plan-window line as a fraction (0.9 keeps 10 %), or '\''off'\''.' '--seven-day	Plan-window line as a fraction (0.9 keeps 10 %), or '\''off'\''.' '--agent	Set a sub-cap for one agent (claude, codex, …).' '--dry-run	Say what would change; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --five-hour --seven-day --agent
            set stop 0
        case 'budget show'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'budget test'
            set names 
            set cmds 
            set opts '--daily	USD (20, $20, 20$), or '\''off'\'' to remove the cap.' '--weekly	USD (20, $20, 20$), or '\''off'\'' to remove the cap.' '--monthly	USD (20, $20, 20$), or '\''off'\'' to remove the cap.' '--daily-tokens	Tokens, or '\''off'\'' to remove the cap.' '--weekly-tokens	Tokens, or '\''off'\'' to remove the cap.' '--monthly-tokens	Tokens, or '\''off'\'' to remove the cap.' '--five-hour	Plan-window line as a fraction (0.9 keeps 10 %), or '\''off'\''.' '--seven-day	Plan-window line as a fraction (0.9 keeps 10 %), or '\''off'\''.' '--since	How far back to replay: 30d, 2w, 12h.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --five-hour --seven-day --since
            set stop 0
        case 'budget snooze'
            set names 
            set cmds 
            set opts '--dry-run	Say what would be paused; record nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'prices'
            set names explain update
            set cmds 'explain	Which price matched MODEL, the rates per million tokens per tier and…' 'update	Fetch the maintained price data, validate it and cache it; used offli…'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'prices explain'
            set names 
            set cmds 
            set opts '--provider	anthropic or openai (guessed from the name).' '--tier	fast, priority, flex or batch (default: standard).' '--at	Price at this date (YYYY-MM-DD) instead of today.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --provider --tier --at
            set stop 0
        case 'prices update'
            set names 
            set cmds 
            set opts '--url	Fetch genai-prices'\'' data format from this URL.' '--file	Read genai-prices'\'' data format from this file.' '--dry-run	Fetch and validate; cache nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --url --file
            set stop 0
        case 'import'
            set names claude codex gemini copilot cursor
            set cmds 'claude	Claude Code transcripts (~/.claude/projects, CLAUDE_CONFIG_DIR), sub-…' 'codex	Codex rollouts (~/.codex/sessions and archived_sessions, CODEX_HOME);…' 'gemini	Gemini CLI session logs (~/.gemini/tmp/*/chats, GEMINI_CLI_HOME); liv…' 'copilot	Copilot CLI session logs (~/.copilot/session-state, COPILOT_HOME), Co…' 'cursor	Cursor'\''s usage export (and the team Admin API), attributed to `run cu…'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'import claude'
            set names 
            set cmds 
            set opts '--dry-run	Read and report; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'import codex'
            set names 
            set cmds 
            set opts '--dry-run	Read and report; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'import gemini'
            set names 
            set cmds 
            set opts '--dry-run	Read and report; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'import copilot'
            set names 
            set cmds 
            set opts '--dry-run	Read and report; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'import cursor'
            set names 
            set cmds 
            set opts '--api	Also read the team Admin API (key in AGENTMETER_CURSOR_ADMIN_KEY).' '--since	How far back the Admin API is read: 30d, 2w, …' '--dry-run	Read and report; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --since
            set stop 0
        case 'collector'
            set names serve report export audit token caps budget alerts
            set cmds 'serve	Run the collector in the foreground.' 'report	Spend across developers, teams, agents, repos, models, days, sub-agen…' 'export	Every developer'\''s usage as FOCUS 1.2 rows, for the finance tools; or…' 'audit	Who changed which cap and who issued or revoked which token, when, ol…' 'token	Bearer tokens, one per developer (stored hashed).' 'caps	Team and developer caps that clients merge with their own.' 'budget	Team wallets: replay a team'\''s history through pooled caps.' 'alerts	Per-team alert webhooks (Slack or generic JSON) and the daily digest.'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'collector serve'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--host	Address to bind. Put a TLS proxy in front for anything but loopback.' '--port	Port.' '--rate	Requests per minute allowed per token.' '--metrics-network	Let scrapers from this network read GET /metrics without a token (rep…' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --host --port --rate --metrics-network
            set stop 0
        case 'collector report'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--by	Group by: developer, team, agent, repo, model, day, subagent (Claude…' '--since	First day, YYYY-MM-DD.' '--until	Last day, YYYY-MM-DD.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --by --since --until
            set stop 0
        case 'collector export'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--format	focus: FOCUS 1.2 CSV; audit: the audit trail (cap changes, tokens iss…' '--output	Write to this file instead of stdout.' '--since	First day, YYYY-MM-DD.' '--until	Last day, YYYY-MM-DD.' '--json	The FOCUS rows as one JSON document {schema, rows}.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --format --output --since --until
            set stop 0
        case 'collector audit'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--since	From: a date (2026-03-01), an ISO time, or a duration back from now (…' '--until	Up to (exclusive): a date, an ISO time or a duration back.' '--team	Only this team'\''s entries.' '--action	Only this action or family: caps, caps.set, wallet, wallet.set, alert…' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --since --until --team --action
            set stop 0
        case 'collector token'
            set names add revoke list
            set cmds 'add	Issue a token and print it (once: only its hash is kept).' 'revoke	Revoke a token; the collector refuses it from the next request on.' 'list	Tokens with their developer, team and state (never the tokens themsel…'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'collector token add'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--developer	Who the token belongs to (their pushes are filed under it).' '--team	The developer'\''s team (for chargeback and team caps). Pushes are filed…' '--cost-center	The cost centre this token'\''s spend is charged to (set here only, neve…' '--role	developer: push only (the default); lead: also their team'\''s reports,…' '--admin	The same as --role admin.' '--dry-run	Say what would change; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --developer --team --cost-center --role
            set stop 0
        case 'collector token revoke'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--developer	Revoke every token of this developer.' '--dry-run	Say what would change; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --developer
            set stop 0
        case 'collector token list'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db
            set stop 0
        case 'collector caps'
            set names set show
            set cmds 'set	Replace a team'\''s or a developer'\''s caps (no cap flags: remove them).' 'show	Every team and developer cap the collector hands out.'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'collector caps set'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--team	Caps for everyone on this team.' '--developer	Caps for this developer.' '--daily	USD per day.' '--weekly	USD per week.' '--monthly	USD per month.' '--daily-tokens	Tokens per day.' '--weekly-tokens	Tokens per week.' '--monthly-tokens	Tokens per month.' '--allow-snooze	Let developers lift these caps for a while with `agentmeter budget sn…' '--pooled	With --team: a team wallet, capping the team'\''s spend added up across…' '--member	With --team --pooled: a sub-cap inside the wallet for this member ('\''*…' '--dry-run	Say what would be stored; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --team --developer --daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --member
            set stop 0
        case 'collector caps show'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db
            set stop 0
        case 'collector budget'
            set names test
            set cmds 'test	Replay the team'\''s history through a team wallet: when each stage woul…'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'collector budget test'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--team	The team whose pushed history is replayed.' '--daily	Pooled USD per day (default: the wallet'\''s).' '--weekly	Pooled USD per week.' '--monthly	Pooled USD per month.' '--member-daily	Each member'\''s USD per day inside the wallet.' '--member-weekly	Each member'\''s USD per week.' '--member-monthly	Each member'\''s USD per month.' '--since	How far back: 30d, 8w, or a day YYYY-MM-DD.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --team --daily --weekly --monthly --member-daily --member-weekly --member-monthly --since
            set stop 0
        case 'collector alerts'
            set names set list rm test digest
            set cmds 'set	Route a team'\''s alerts (pooled wallet thresholds, forecast overruns, d…' 'list	Each team'\''s route (the webhook shown as scheme://host/… only) and the…' 'rm	Stop sending a team'\''s alerts.' 'test	Send a test message with the team'\''s figures now, to check the webhook.' 'digest	Send the team'\''s daily digest now (the collector also sends it once a…'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'collector alerts set'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--team	The team whose alerts go to this webhook.' '--webhook	Where to POST (a Slack incoming webhook or any JSON endpoint); '\''-'\'' re…' '--format	slack: Slack'\''s text+blocks; json: the full agentmeter.team_alert/1 do…' '--thresholds	Fractions of each pooled cap that alert (once per window).' '--digest-hour	Send the daily digest at or after this hour (UTC, 0-23); leave out fo…' '--dry-run	Say what would be stored; write nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --team --webhook --format --thresholds --digest-hour
            set stop 0
        case 'collector alerts list'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db
            set stop 0
        case 'collector alerts rm'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--team	The team whose route to remove.' '--dry-run	Say what would be removed.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --team
            set stop 0
        case 'collector alerts test'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--team	The team whose webhook to try.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --team
            set stop 0
        case 'collector alerts digest'
            set names 
            set cmds 
            set opts '--db	The collector'\''s database: a SQLite file (serve, token add and caps se…' '--team	The team whose daily digest to send now.' '--dry-run	Print the digest; send nothing.' '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --db --team
            set stop 0
        case 'keys'
            set names set list rm
            set cmds 'set	Store a key: typed at a hidden prompt, or piped on stdin.' 'list	Which keys are set (masked) and where each lives.' 'rm	Remove a stored key (an environment variable is yours to unset).'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'keys set'
            set names 
            set cmds 
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'keys list'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'keys rm'
            set names 
            set cmds 
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'config'
            set names path show
            set cmds 'path	Where config.toml lives.' 'show	The effective configuration: the file, defaults, and the environment…'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'config path'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'config show'
            set names 
            set cmds 
            set opts '--json	Print JSON.' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'completions'
            set names generate show install
            set cmds 'generate	Write the completion scripts for every shell (the repository'\''s comple…' 'show	Print the completion script for one shell.' 'install	Install the completion script where your shell finds it.'
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'completions generate'
            set names 
            set cmds 
            set opts '--output	Directory to write agentmeter.bash, _agentmeter and agentmeter.fish i…' '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued --output
            set stop 0
        case 'completions show'
            set names 
            set cmds 
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        case 'completions install'
            set names 
            set cmds 
            set opts '--help	Show this message and exit.' '-h	Show this message and exit.'
            set valued 
            set stop 0
        end
        test -z "$w"; and break
        switch $w
            case --
                __fish_complete_path $cur
                return
            case '-*=*'
            case '-*'
                contains -- $w $valued; and set expect $w
            case '*'
                if contains -- $w $names
                    set path (string trim -- "$path $w")
                    set npos 0
                else
                    set npos (math $npos + 1)
                end
        end
    end
    if test -n "$expect"
        __agentmeter_values "$path|$expect" $cur
        return
    end
    if test $stop -eq 1 -a $npos -gt 0
        __fish_complete_path $cur
        return
    end
    if string match -q -- '-*' $cur
        printf '%s\n' $opts
        return
    end
    if test (count $cmds) -gt 0
        printf '%s\n' $cmds
        return
    end
    __agentmeter_values "$path|#$npos" $cur
end

complete -c agentmeter -e
complete -c agentmeter -f -a '(__agentmeter_complete)'
