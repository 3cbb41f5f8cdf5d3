#!/usr/bin/env bash
# Reports the Rust files under src/ longer than 800 lines and the functions
# longer than 150 lines, leaving out `#[cfg(test)] mod … { }` blocks and
# files named tests.rs. A brace-counting heuristic: string and char literals
# and `//` comments are blanked before counting. Prints what it finds and
# exits 0. Usage: tools/sizes.sh [DIR] (default: src).
set -u
dir="${1:-src}"
max_file=800
max_fn=150
find "$dir" -name '*.rs' ! -name tests.rs | LC_ALL=C sort | while IFS= read -r f; do
    awk -v file="$f" -v max_file="$max_file" -v max_fn="$max_fn" '
    function clean(s) {
        gsub(/\\\\/, "", s)
        gsub(/\\"/, "", s)
        gsub(/"[^"]*"/, "\"\"", s)
        gsub(/\x27[{}]\x27/, "\x27 \x27", s)
        sub(/\/\/.*/, "", s)
        return s
    }
    function count(s, ch,    n) { n = gsub(ch, "", s); return n }
    BEGIN { test_pending = 0; in_test = 0; tdepth = 0; in_fn = 0; total = 0; code = 0 }
    {
        total++
        line = clean($0)
        if (in_test) {
            tdepth += count(line, "{") - count(line, "}")
            if (tdepth <= 0) in_test = 0
            next
        }
        if (line ~ /^[ \t]*#\[cfg\(test\)\][ \t]*$/) { test_pending = 1; code++; next }
        if (test_pending && line ~ /^[ \t]*(pub(\([a-z]+\))?[ \t]+)?mod[ \t]+[A-Za-z_0-9]+[ \t]*\{/) {
            test_pending = 0; code--
            tdepth = count(line, "{") - count(line, "}")
            in_test = (tdepth > 0)
            next
        }
        test_pending = 0
        code++
        if (!in_fn && line ~ /^[ \t]*(pub(\([a-z:]+\))?[ \t]+)?((const|async|unsafe|extern "C")[ \t]+)*fn[ \t]+[A-Za-z_0-9]+/) {
            name = line
            sub(/.*fn[ \t]+/, "", name)
            sub(/[^A-Za-z_0-9].*/, "", name)
            in_fn = 1; fstart = NR; fdepth = 0; opened = 0
        }
        if (in_fn) {
            o = count(line, "{"); c = count(line, "}")
            if (!opened && o == 0 && line ~ /;[ \t]*$/) { in_fn = 0; next }
            if (o > 0) opened = 1
            fdepth += o - c
            if (opened && fdepth <= 0) {
                len = NR - fstart + 1
                if (len > max_fn) printf "function %s:%d %s: %d lines\n", file, fstart, name, len
                in_fn = 0
            }
        }
    }
    END {
        if (code > max_file) printf "file     %s: %d lines (%d without test modules)\n", file, total, code
        else if (total > max_file) printf "file     %s: %d lines with its test module (%d without)\n", file, total, code
    }
    ' "$f"
done
exit 0
