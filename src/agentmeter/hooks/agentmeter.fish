# agentmeter shell hook for fish: agentmeter shell-init fish | source
#
# Defines one function per agent in config.toml's [shell] agents, each running `agentmeter run NAME $argv`.
# Bypass: `command claude`, or AGENTMETER_DISABLE=1. Inside a wrapped session (AGENTMETER_SESSION_ID set)
# the real agent runs directly: its environment already points at the session. Sourcing it again only
# redefines the same functions. Nothing runs at start-up but a few assignments: no subprocess.

set -g __agentmeter_agents claude codex cursor
set -g __agentmeter_config ''
set -g __agentmeter_self ''

# A cached copy (written by `shell-init --install`) regenerates itself when config.toml is newer.
if test -n "$__agentmeter_self" -a -e "$__agentmeter_config" -a -e "$__agentmeter_self"; and command -q agentmeter
    and test (path mtime -- $__agentmeter_config) -gt (path mtime -- $__agentmeter_self)
    command agentmeter shell-init fish --refresh 2>/dev/null | source
    return 0
end

function __agentmeter_disabled
    set -q AGENTMETER_DISABLE; and test -n "$AGENTMETER_DISABLE" -a "$AGENTMETER_DISABLE" != 0
end

# agentmeter is usable when it is on PATH and, for a script, its interpreter still exists (a deleted venv
# leaves a console script whose #! points nowhere).
function __agentmeter_usable
    set -l bin (command -v agentmeter 2>/dev/null); or return 1
    test -x "$bin"; or return 1
    read -l first <$bin 2>/dev/null; or return 0
    if string match -q -- '#!*' $first
        set -l interp (string replace -r -- '^#!\s*(\S+).*$' '$1' $first)
        test -x "$interp"; or return 1
    end
    return 0
end

function __agentmeter_wrap
    set -l name $argv[1]
    set -e argv[1]
    if test -n "$AGENTMETER_SESSION_ID"; or __agentmeter_disabled
        command $name $argv
        return $status
    end
    if not __agentmeter_usable
        if not set -q __agentmeter_warned
            set -g __agentmeter_warned 1
            printf 'agentmeter: not on PATH or broken, so %s runs unmetered. Reinstall agentmeter, or remove its line from your shell rc file.\n' $name >&2
        end
        command $name $argv
        return $status
    end
    command agentmeter run --unmetered-on-error $name $argv
end

for __agentmeter_name in $__agentmeter_agents
    eval "function $__agentmeter_name --description '$__agentmeter_name, metered by agentmeter'; __agentmeter_wrap $__agentmeter_name \$argv; end"
end
set -e __agentmeter_name
