# help2roff.awk: one `faultline ... --help` text (stdin) to a man page.
#   awk -v page=faultline-run -v summary='...' -v version=0.1.0 \
#       -v seealso='faultline(1), ...' -f help2roff.awk
# The help text's own layout carries over: the "usage:" block is the
# SYNOPSIS; a line ending in ':' above indented lines is a subsection;
# indented lines (option tables, examples) stay as written (.nf); other
# lines are prose, filled by man.  Nothing here repeats the help's words.

function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    if (s ~ /^[.']/) s = "\\&" s
    return s
}
function arg(s) {
    gsub(/"/, "\\(dq", s)
    return "\"" esc(s) "\""
}
function verbatim_on() { if (!nf) { print ".PP"; print ".nf"; nf = 1 } }
function verbatim_off() { if (nf) { print ".fi"; nf = 0 } }
function indented(s) { return s ~ /^[ \t]/ }

{ line[++n] = $0 }

END {
    title = toupper(page)
    print ".\\\" Generated from `" gensub_dash(page) " --help` by man/help2roff.awk; do not edit."
    print ".TH " arg(title) " 1 \"\" " arg("faultline " version) " \"faultline manual\""
    print ".nh"
    print ".SH NAME"
    print esc(page) " \\- " esc(summary)
    i = 1
    while (i <= n && line[i] == "") i++
    if (i <= n && line[i] ~ /^usage: /) {
        print ".SH SYNOPSIS"
        print ".nf"
        sub(/^usage: /, "", line[i])
        for (; i <= n && line[i] != ""; i++) {
            l = line[i]
            sub(/^       /, "", l)
            print esc(l)
        }
        print ".fi"
    }
    print ".SH DESCRIPTION"
    para = 1
    for (; i <= n; i++) {
        l = line[i]
        if (l == "") {
            verbatim_off()
            para = 1
            continue
        }
        next_indented = i < n && indented(line[i + 1])
        if (!indented(l) && l ~ /:$/ && length(l) < 60 && (i == n || next_indented || line[i + 1] == "")) {
            verbatim_off()
            h = substr(l, 1, length(l) - 1)
            print ".SS " arg(toupper(substr(h, 1, 1)) substr(h, 2))
            para = 1
            continue
        }
        if (indented(l) || nf || next_indented) {
            verbatim_on()
            print esc(l)
            para = 0
            continue
        }
        if (para) print ".PP"
        para = 0
        print esc(l)
    }
    verbatim_off()
    if (seealso != "") {
        print ".SH \"SEE ALSO\""
        print esc(seealso)
    }
}

# "faultline-net-serve" as typed: "faultline net serve".
function gensub_dash(s) { gsub(/-/, " ", s); return s }
