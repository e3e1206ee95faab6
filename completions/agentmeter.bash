# bash completion for agentmeter. Generated from the CLI by scripts/gen_completions.py (agentmeter completions generate): do not edit.
# Install: agentmeter completions install bash

_agentmeter_spec() {
    case $1 in
    '') cmds='run sessions agents env audit report export reprice reconcile sync shell-init prompt statusline version demo doctor status top session proxy budget prices import collector keys config completions' opts='--version -V --debug --help -h' valued='' stop=0 ;;
    'run') cmds='' opts='--budget --tag --quiet -q --no-downgrade --help -h' valued='--budget --tag' stop=1 ;;
    'sessions') cmds='' opts='--since --json --help -h' valued='--since' stop=0 ;;
    'agents') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'env') cmds='' opts='--agent --tag --json --help -h' valued='--agent --tag' stop=0 ;;
    'audit') cmds='' opts='--since --until --action --json --help -h' valued='--since --until --action' stop=0 ;;
    'report') cmds='' opts='--by --since --until --tz --format --chart --no-chart --html --json --commits --help -h' valued='--by --since --until --tz --format --html --commits' stop=0 ;;
    'export') cmds='' opts='--format --output --since --until --json --help -h' valued='--format --output --since --until' stop=0 ;;
    'reprice') cmds='' opts='--since --dry-run --json --help -h' valued='--since' stop=0 ;;
    'reconcile') cmds='' opts='--session --since --json --help -h' valued='--session --since' stop=0 ;;
    'sync') cmds='' opts='--dry-run --json --help -h' valued='' stop=0 ;;
    'shell-init') cmds='' opts='--install --refresh --help -h' valued='' stop=0 ;;
    'prompt') cmds='' opts='--shell --no-color --json --plan --help -h' valued='--shell' stop=0 ;;
    'statusline') cmds='' opts='--install --force --no-color --help -h' valued='' stop=0 ;;
    'version') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'demo') cmds='' opts='--keep --no-keep --help -h' valued='' stop=0 ;;
    'doctor') cmds='' opts='--json --repair --help -h' valued='' stop=0 ;;
    'status') cmds='' opts='--json --watch --help -h' valued='' stop=0 ;;
    'top') cmds='' opts='--help -h' valued='' stop=0 ;;
    'session') cmds='show' opts='--help -h' valued='' stop=0 ;;
    'session show') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'proxy') cmds='start stop status serve' opts='--help -h' valued='' stop=0 ;;
    'proxy start') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'proxy stop') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'proxy status') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'proxy serve') cmds='' opts='--port --no-quiet --quiet --help -h' valued='--port' stop=0 ;;
    'budget') cmds='set show test snooze' opts='--help -h' valued='' stop=0 ;;
    'budget set') cmds='' opts='--daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --five-hour --seven-day --agent --dry-run --json --help -h' valued='--daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --five-hour --seven-day --agent' stop=0 ;;
    'budget show') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'budget test') cmds='' opts='--daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --five-hour --seven-day --since --json --help -h' valued='--daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --five-hour --seven-day --since' stop=0 ;;
    'budget snooze') cmds='' opts='--dry-run --json --help -h' valued='' stop=0 ;;
    'prices') cmds='explain update' opts='--help -h' valued='' stop=0 ;;
    'prices explain') cmds='' opts='--provider --tier --at --json --help -h' valued='--provider --tier --at' stop=0 ;;
    'prices update') cmds='' opts='--url --file --dry-run --json --help -h' valued='--url --file' stop=0 ;;
    'import') cmds='claude codex gemini copilot cursor' opts='--help -h' valued='' stop=0 ;;
    'import claude') cmds='' opts='--dry-run --json --help -h' valued='' stop=0 ;;
    'import codex') cmds='' opts='--dry-run --json --help -h' valued='' stop=0 ;;
    'import gemini') cmds='' opts='--dry-run --json --help -h' valued='' stop=0 ;;
    'import copilot') cmds='' opts='--dry-run --json --help -h' valued='' stop=0 ;;
    'import cursor') cmds='' opts='--api --since --dry-run --json --help -h' valued='--since' stop=0 ;;
    'collector') cmds='serve report export audit token caps budget alerts' opts='--help -h' valued='' stop=0 ;;
    'collector serve') cmds='' opts='--db --host --port --rate --metrics-network --help -h' valued='--db --host --port --rate --metrics-network' stop=0 ;;
    'collector report') cmds='' opts='--db --by --since --until --json --help -h' valued='--db --by --since --until' stop=0 ;;
    'collector export') cmds='' opts='--db --format --output --since --until --json --help -h' valued='--db --format --output --since --until' stop=0 ;;
    'collector audit') cmds='' opts='--db --since --until --team --action --json --help -h' valued='--db --since --until --team --action' stop=0 ;;
    'collector token') cmds='add revoke list' opts='--help -h' valued='' stop=0 ;;
    'collector token add') cmds='' opts='--db --developer --team --cost-center --role --admin --dry-run --json --help -h' valued='--db --developer --team --cost-center --role' stop=0 ;;
    'collector token revoke') cmds='' opts='--db --developer --dry-run --json --help -h' valued='--db --developer' stop=0 ;;
    'collector token list') cmds='' opts='--db --json --help -h' valued='--db' stop=0 ;;
    'collector caps') cmds='set show' opts='--help -h' valued='' stop=0 ;;
    'collector caps set') cmds='' opts='--db --team --developer --daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --allow-snooze --pooled --member --dry-run --json --help -h' valued='--db --team --developer --daily --weekly --monthly --daily-tokens --weekly-tokens --monthly-tokens --member' stop=0 ;;
    'collector caps show') cmds='' opts='--db --json --help -h' valued='--db' stop=0 ;;
    'collector budget') cmds='test' opts='--help -h' valued='' stop=0 ;;
    'collector budget test') cmds='' opts='--db --team --daily --weekly --monthly --member-daily --member-weekly --member-monthly --since --json --help -h' valued='--db --team --daily --weekly --monthly --member-daily --member-weekly --member-monthly --since' stop=0 ;;
    'collector alerts') cmds='set list rm test digest' opts='--help -h' valued='' stop=0 ;;
    'collector alerts set') cmds='' opts='--db --team --webhook --format --thresholds --digest-hour --dry-run --json --help -h' valued='--db --team --webhook --format --thresholds --digest-hour' stop=0 ;;
    'collector alerts list') cmds='' opts='--db --json --help -h' valued='--db' stop=0 ;;
    'collector alerts rm') cmds='' opts='--db --team --dry-run --json --help -h' valued='--db --team' stop=0 ;;
    'collector alerts test') cmds='' opts='--db --team --json --help -h' valued='--db --team' stop=0 ;;
    'collector alerts digest') cmds='' opts='--db --team --dry-run --json --help -h' valued='--db --team' stop=0 ;;
    'keys') cmds='set list rm' opts='--help -h' valued='' stop=0 ;;
    'keys set') cmds='' opts='--help -h' valued='' stop=0 ;;
    'keys list') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'keys rm') cmds='' opts='--help -h' valued='' stop=0 ;;
    'config') cmds='path show' opts='--help -h' valued='' stop=0 ;;
    'config path') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'config show') cmds='' opts='--json --help -h' valued='' stop=0 ;;
    'completions') cmds='generate show install' opts='--help -h' valued='' stop=0 ;;
    'completions generate') cmds='' opts='--output --help -h' valued='--output' stop=0 ;;
    'completions show') cmds='' opts='--help -h' valued='' stop=0 ;;
    'completions install') cmds='' opts='--help -h' valued='' stop=0 ;;
    *) cmds='' opts='' valued='' stop=0 ;;
    esac
}

_agentmeter_values() {
    case "$1|$2" in
    'run|#0') COMPREPLY=($(compgen -W 'claude codex gemini copilot opencode qwen aider crush cline kilo droid goose cursor amp' -- "$cur")) ;;
    'report|--by') COMPREPLY=($(compgen -W 'day week month agent model repo branch session tag subagent commit' -- "$cur")) ;;
    'report|--format') COMPREPLY=($(compgen -W 'table json csv' -- "$cur")) ;;
    'report|--html') COMPREPLY=($(compgen -f -- "$cur")) ;;
    'export|--format') COMPREPLY=($(compgen -W 'focus csv jsonl' -- "$cur")) ;;
    'export|--output') COMPREPLY=($(compgen -f -- "$cur")) ;;
    'shell-init|#0') COMPREPLY=($(compgen -W 'bash zsh fish' -- "$cur")) ;;
    'prompt|--shell') COMPREPLY=($(compgen -W 'bash zsh plain' -- "$cur")) ;;
    'import claude|#0') COMPREPLY=($(compgen -f -- "$cur")) ;;
    'import codex|#0') COMPREPLY=($(compgen -f -- "$cur")) ;;
    'import gemini|#0') COMPREPLY=($(compgen -f -- "$cur")) ;;
    'import copilot|#0') COMPREPLY=($(compgen -f -- "$cur")) ;;
    'import cursor|#0') COMPREPLY=($(compgen -f -- "$cur")) ;;
    'collector report|--by') COMPREPLY=($(compgen -W 'developer team agent repo model day subagent commit tag:' -- "$cur")) ;;
    'collector export|--format') COMPREPLY=($(compgen -W 'focus audit' -- "$cur")) ;;
    'collector token add|--role') COMPREPLY=($(compgen -W 'developer lead finance admin' -- "$cur")) ;;
    'collector alerts set|--format') COMPREPLY=($(compgen -W 'slack json' -- "$cur")) ;;
    'completions generate|--output') COMPREPLY=($(compgen -f -- "$cur")) ;;
    'completions show|#0') COMPREPLY=($(compgen -W 'bash zsh fish' -- "$cur")) ;;
    'completions install|#0') COMPREPLY=($(compgen -W 'bash zsh fish' -- "$cur")) ;;
    *) COMPREPLY=() ;;
    esac
}

_agentmeter() {
    local cur=${COMP_WORDS[COMP_CWORD]} path='' expect='' w i npos=0 cmds opts valued stop
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ -n $expect ]]; then expect=''; continue; fi
        _agentmeter_spec "$path"
        case $w in
        --) COMPREPLY=(); return ;;
        -*=*) ;;
        -*) [[ " $valued " == *" $w "* ]] && expect=$w ;;
        *) if [[ " $cmds " == *" $w "* ]]; then path=${path:+$path }$w; npos=0; else npos=$((npos + 1)); fi ;;
        esac
    done
    if [[ -n $expect ]]; then _agentmeter_values "$path" "$expect"; return; fi
    _agentmeter_spec "$path"
    if ((stop && npos > 0)); then COMPREPLY=(); return; fi
    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi
    if [[ -n $cmds ]]; then COMPREPLY=($(compgen -W "$cmds" -- "$cur")); return; fi
    _agentmeter_values "$path" "#$npos"
}

complete -o default -F _agentmeter agentmeter
