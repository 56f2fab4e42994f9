# bash completion for faultline                             -*- shell-script -*-
#
# Everything offered is read from the faultline being completed, at
# completion time, so it never drifts from the binary:
#   - commands: the "commands:" list of `faultline --help`;
#   - sub-commands (net serve, image ls, ...): the words after
#     "faultline CMD" in the "usage:" lines of `faultline CMD --help`;
#   - options: every --long option, and every -x at the start of a line,
#     in the help of the command (or sub-command);
#   - values: an option's placeholder in the help ("--out DIR") and the
#     command's positional placeholders in its usage lines decide what is
#     offered: scenario files (*.yaml, *.yml) for SCENARIO* and *.yaml,
#     and for FILE when the command's help is about a scenario; run
#     directories (those holding a run.db, and folders of them) for RUN*;
#     directories for DIR; files for FILE, OUT, PATH, IMAGE; nothing for
#     other values (N, TIME, ...).
# Help texts are cached per shell, per binary.

# shellcheck disable=SC2207 # compgen output split on purpose (IFS is a newline
# around file names, which may hold blanks; words and options have none)
declare -gA _faultline_help_cache

# _faultline_help PROG [WORDS...]: `PROG WORDS... --help`, cached.
_faultline_help()
{
    local key="$*"
    if [[ ! -v _faultline_help_cache[$key] ]]; then
        _faultline_help_cache[$key]=$("$@" --help 2>/dev/null)
    fi
    printf '%s\n' "${_faultline_help_cache[$key]}"
}

# The usage block: the "usage:" line and the indented lines under it.
_faultline_usage()
{
    awk '/^usage: / {on = 1} on && /^$/ {exit} on {sub(/^usage: /, ""); print}'
}

_faultline_compgen_files()
{
    local IFS=$'\n'
    COMPREPLY+=($(compgen -f -- "$cur"))
    compopt -o filenames 2>/dev/null
}

_faultline_compgen_dirs()
{
    local IFS=$'\n'
    COMPREPLY+=($(compgen -d -- "$cur"))
    compopt -o filenames 2>/dev/null
}

_faultline_compgen_yaml()
{
    local IFS=$'\n'
    COMPREPLY+=($(compgen -f -X '!*.yaml' -- "$cur") $(compgen -f -X '!*.yml' -- "$cur")
        $(compgen -d -- "$cur"))
    compopt -o filenames 2>/dev/null
}

# Run directories: folders with a run.db, folders of them, run.db files.
_faultline_compgen_runs()
{
    local IFS=$'\n' d found=()
    for d in $(compgen -d -- "$cur"); do
        if [[ -e $d/run.db ]] || compgen -G "$d/*/run.db" >/dev/null; then
            found+=("$d")
        fi
    done
    found+=($(compgen -f -X '!*run.db' -- "$cur"))
    if ((${#found[@]} == 0)); then
        found=($(compgen -d -- "$cur"))
    fi
    COMPREPLY+=("${found[@]}")
    compopt -o filenames 2>/dev/null
}

# _faultline_value KIND-WORD HELP: completes a value by its placeholder.
_faultline_value()
{
    local word=$1 help=$2
    case $word in
    *.yaml | *.yml | SCENARIO*) _faultline_compgen_yaml ;;
    RUN*) _faultline_compgen_runs ;;
    DIR) _faultline_compgen_dirs ;;
    FILE)
        if [[ ${help,,} == *scenario* ]]; then
            _faultline_compgen_yaml
        else
            _faultline_compgen_files
        fi
        ;;
    OUT | PATH | IMAGE | FILE* | SRC*) _faultline_compgen_files ;;
    esac
}

_faultline()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prog=${COMP_WORDS[0]}
    COMPREPLY=()
    [[ -n $prog ]] && type -P -- "$prog" >/dev/null || prog=faultline
    local top
    top=$(_faultline_help "$prog")
    if ((COMP_CWORD == 1)); then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(awk '/^commands:/ {on = 1; next} on && /^$/ {exit}
                on && /^  [a-z]/ {print $1}' <<<"$top")" -- "$cur"))
        fi
        return 0
    fi

    local cmd=${COMP_WORDS[1]} words help usage subs
    words=$cmd
    help=$(_faultline_help "$prog" "$cmd")
    usage=$(_faultline_usage <<<"$help")
    subs=$(awk -v c="$cmd" '$1 == "faultline" && $2 == c && $3 ~ /^[a-z][a-z0-9-]*$/ {print $3}' \
        <<<"$usage" | sort -u)
    local first=2
    if [[ -n $subs ]]; then
        if ((COMP_CWORD == 2)) && [[ $cur != -* ]]; then
            COMPREPLY=($(compgen -W "$subs" -- "$cur"))
            return 0
        fi
        local sub=${COMP_WORDS[2]} s
        for s in $subs; do
            if [[ $s == "$sub" ]]; then
                words="$cmd $sub"
                first=3
                local subhelp
                # shellcheck disable=SC2086 # two words
                subhelp=$(_faultline_help "$prog" $words)
                [[ -n $subhelp ]] && help=$subhelp && usage=$(_faultline_usage <<<"$help")
            fi
        done
    fi

    # The value of an option: its placeholder in the help ("--out DIR",
    # "-o, --out DIR").
    local prev=${COMP_WORDS[COMP_CWORD - 1]}
    if ((COMP_CWORD > first - 1)) && [[ $prev == -* && $cur != -* ]]; then
        local ph
        ph=$(awk -v o="$prev" '{
                for (i = 1; i < NF; i++) {
                    w = $i; sub(/,$/, "", w)
                    if (w == o) {
                        j = i + 1
                        if ($j ~ /^--/) j++           # "-o, --out DIR"
                        if (j <= NF && $j ~ /^[A-Z][A-Za-z_.:]*$/) { print $j; exit }
                        if (j <= NF) { print "-"; exit } # a lowercase or no value
                    }
                }
            }' <<<"$help")
        # "-": a flag (or a lowercase value): go on to positionals.
        if [[ -n $ph && $ph != - ]]; then
            _faultline_value "$ph" "$help"
            return 0
        fi
    fi

    if [[ $cur == -* ]]; then
        local opts
        opts=$(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$help"
            grep -oE -- '^ +-[A-Za-z],' <<<"$help" | tr -d ' ,')
        COMPREPLY=($(compgen -W "$(sort -u <<<"$opts")" -- "$cur"))
        return 0
    fi

    # Positional placeholders in the usage lines of this (sub)command.
    local ph
    for ph in $(awk -v w="faultline $words " 'index($0, w) == 1 {
                    n = split(substr($0, length(w) + 1), t, " ")
                    for (i = 1; i <= n; i++) {
                        if (t[i] ~ /^-/) { if (t[i + 1] ~ /^[A-Z]/) i++; continue }
                        if (t[i] ~ /^[A-Z]/ || t[i] ~ /\.ya?ml$/) print t[i]
                    }
                }' <<<"$usage" | sort -u); do
        _faultline_value "$ph" "$help"
    done
    return 0
}
complete -F _faultline faultline
