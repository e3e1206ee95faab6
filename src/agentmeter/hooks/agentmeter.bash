# agentmeter shell hook for bash: eval "$(agentmeter shell-init bash)"
#
# Defines one function per agent in config.toml's [shell] agents, each running `agentmeter run NAME "$@"`.
# Bypass: `command claude`, or AGENTMETER_DISABLE=1. Inside a wrapped session (AGENTMETER_SESSION_ID set)
# the real agent runs directly: its environment already points at the session. Sourcing it again only
# redefines the same functions. Nothing runs at start-up but a few assignments: no subprocess.

__agentmeter_agents=(claude codex cursor)
__agentmeter_config=''
__agentmeter_self=''

# A cached copy (written by `shell-init --install`) regenerates itself when config.toml is newer.
if [ -n "$__agentmeter_self" ] && [ "$__agentmeter_config" -nt "$__agentmeter_self" ] \
    && command -v agentmeter >/dev/null 2>&1; then
    eval "$(command agentmeter shell-init bash --refresh 2>/dev/null)"
    return 0 2>/dev/null
fi

__agentmeter_disabled() {
    [ -n "${AGENTMETER_DISABLE:-}" ] && [ "$AGENTMETER_DISABLE" != 0 ]
}

# agentmeter is usable when it is on PATH and, for a script, its interpreter still exists (a deleted venv
# leaves a console script whose #! points nowhere).
__agentmeter_usable() {
    local bin first interp
    bin=$(command -v agentmeter 2>/dev/null) || return 1
    case $bin in /*) ;; *) return 0 ;; esac
    [ -x "$bin" ] || return 1
    IFS= read -r first < "$bin" 2>/dev/null || return 0
    case $first in
        '#!'*)
            interp=${first#??}
            interp=${interp#"${interp%%[! ]*}"}
            interp=${interp%% *}
            [ -x "$interp" ] || return 1
            ;;
    esac
    return 0
}

__agentmeter_wrap() {
    local name=$1
    shift
    if [ -n "${AGENTMETER_SESSION_ID:-}" ] || __agentmeter_disabled; then
        command "$name" "$@"
        return
    fi
    if ! __agentmeter_usable; then
        if [ -z "${__agentmeter_warned:-}" ]; then
            __agentmeter_warned=1
            printf 'agentmeter: not on PATH or broken, so %s runs unmetered. Reinstall agentmeter, or remove its line from your shell rc file.\n' "$name" >&2
        fi
        command "$name" "$@"
        return
    fi
    command agentmeter run --unmetered-on-error "$name" "$@"
}

for __agentmeter_name in "${__agentmeter_agents[@]}"; do
    eval "function $__agentmeter_name { __agentmeter_wrap $__agentmeter_name \"\$@\"; }"
done
unset __agentmeter_name
