"""Runs every DuckDB query of the README's worked examples on fresh outputs and compares
the rows each prints in its comments with what DuckDB returns.

Usage: readme_queries.py README OUT_ROOT

OUT_ROOT holds `demo/` and `steady/` (the outputs the README's `out/demo` and
`out/steady` name). A statement's printed rows are the `-- ` comment lines after it, up
to a blank line or the next statement; a first comment line that names the result's
columns is a header. Without a `...` line the rows must be the result's, in order; with
one, each printed row must be one of the result's, in order, and the `(N rows)` it may
carry must be the result's count. Values are compared token by token: numbers as
numbers (400 is 400.0), lists and strings by their words.

Prints one line per statement checked and exits 1 on the first difference.
"""

import re
import sys

import duckdb

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def tokens(text):
    """The words of a printed value or row, brackets, commas and quotes dropped."""
    return [t for t in re.split(r"[\s\[\],']+", text) if t]


def same(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if NUMBER.match(x) and NUMBER.match(y):
            if abs(float(x) - float(y)) > 1e-9 * max(1.0, abs(float(y))):
                return False
        elif x != y:
            return False
    return True


def render(value):
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return str(value)


def statements(readme):
    """(sql, printed comment lines) for every statement of every ```sql block."""
    out = []
    for block in re.findall(r"```sql\n(.*?)```", readme, re.S):
        sql, printed, in_rows = [], [], False
        for line in block.splitlines():
            if line.startswith("--"):
                if in_rows:
                    printed.append(line[2:].strip())
                continue
            if not line.strip():
                if in_rows:
                    out.append((" ".join(sql), printed))
                    sql, printed, in_rows = [], [], False
                continue
            if in_rows:
                out.append((" ".join(sql), printed))
                sql, printed, in_rows = [], [], False
            sql.append(line)
            if line.rstrip().endswith(";"):
                in_rows = True
        if sql:
            out.append((" ".join(sql), printed))
    return out


def main():
    readme_path, root = sys.argv[1], sys.argv[2]
    readme = open(readme_path, encoding="utf-8").read()
    checked = 0
    for sql, printed in statements(readme):
        sql = sql.replace("'out/", f"'{root}/")
        con = duckdb.connect()
        rel = con.sql(sql.rstrip().rstrip(";"))
        columns = rel.columns
        rows = [tokens(" ".join(render(v) for v in r)) for r in rel.fetchall()]
        if not printed:
            print(f"ran (prints nothing): {sql[:70]}")
            continue
        if printed and [t.lower() for t in tokens(printed[0])] == [c.lower() for c in columns]:
            printed = printed[1:]
        elided = any("..." in p for p in printed)
        shown = []
        for p in printed:
            if "..." in p:
                m = re.search(r"\((\d+) rows\)", p)
                if m and int(m.group(1)) != len(rows):
                    sys.exit(f"{sql[:70]}: {m.group(1)} rows printed, {len(rows)} returned")
                continue
            shown.append(tokens(p))
        if not elided:
            if len(shown) != len(rows) or not all(same(s, r) for s, r in zip(shown, rows)):
                sys.exit(
                    f"{sql[:70]}:\nprinted {[' '.join(s) for s in shown]}\n"
                    f"returned {[' '.join(r) for r in rows]}"
                )
        else:
            at = 0
            for s in shown:
                while at < len(rows) and not same(s, rows[at]):
                    at += 1
                if at == len(rows):
                    sys.exit(f"{sql[:70]}: printed row {' '.join(s)} is not returned in order")
                at += 1
        checked += 1
        print(f"ok ({len(shown)} rows): {sql[:70]}")
    if checked < 10:
        sys.exit(f"only {checked} statements with printed rows")
    print(f"{checked} statements' printed rows are DuckDB's")


if __name__ == "__main__":
    main()
