#!/usr/bin/env python3
"""Plans and checks the differential test: pgstream's output against the installed wal2json's.

  difftool.py plan  CORPUS.sql OPTION_SETS OUTDIR   -> writes OUTDIR/peeks.sql (psql script) and OUTDIR/plan.json
  difftool.py check CORPUS.sql OUTDIR               -> prints one line per case, exit status = number of failures

run.sh runs peeks.sql with `psql -At -0`, so every output file holds NUL-terminated rows, byte for byte.
Errors of a peek are read back from psql's stderr, which carries a `@@call K` marker before each peek.

Deliberate differences (declared in the corpus with `-- @@ expect-difference: NAME`) are applied to wal2json's
output as documented transformations before comparing; each declared difference must show up at least once:
  quoted-type-names   wal2json appends type names starting with '"' raw; pgstream JSON-escapes those where that
                      paste is invalid JSON (schema-qualified quoted names, embedded "", quoted arrays in pktypes)
  default-escaping    wal2json wraps include-default expressions in quotes unescaped; pgstream JSON-escapes them
  bytea-escape        under bytea_output=escape pgstream renders bytea as hex: compared to wal2json under hex
  v1-message-comma    wal2json 2.5 may start a v1 non-transactional message document with "[," (issue #266)
Options wal2json 2.5 does not know:
  numeric-data-types-as-string  compared to wal2json without it: numeric values quoted, NaN/Infinity as strings
  pgstream-pack-bytes=N          each packed row split on newlines must equal pgstream's unpacked rows
"""
import json
import os
import re
import sys

KNOWN_DIFFERENCES = {"quoted-type-names", "default-escaping", "bytea-escape", "v1-message-comma"}
PGSTREAM_ONLY_OPTIONS = {"numeric-data-types-as-string", "pgstream-pack-bytes"}


# ---------------------------------------------------------------- option sets

def parse_sql_pairs(text):
    """Parses psql-ready `'name','value',...` (values may be NULL) into a list of (name, value-or-None)."""
    items = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t,":
            pos += 1
        if pos >= len(text):
            break
        if text.startswith("NULL", pos) or text.startswith("null", pos):
            items.append(None)
            pos += 4
            continue
        escaped = text.startswith("E'", pos) or text.startswith("e'", pos)
        if escaped:
            pos += 1
        if text[pos] != "'":
            raise ValueError("bad option list near: " + text[pos:])
        pos += 1
        value = []
        while True:
            ch = text[pos]
            if ch == "'":
                if pos + 1 < len(text) and text[pos + 1] == "'":
                    value.append("'")
                    pos += 2
                    continue
                pos += 1
                break
            if escaped and ch == "\\":
                nxt = text[pos + 1]
                value.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}.get(nxt, nxt))
                pos += 2
                continue
            value.append(ch)
            pos += 1
        items.append("".join(value))
    if len(items) % 2:
        raise ValueError("odd number of items in option list: " + text)
    return [(items[i], items[i + 1]) for i in range(0, len(items), 2)]


def sql_literal(value):
    if value is None:
        return "NULL"
    if any(c in value for c in "\\\n\t\r\b\f"):
        return "E'" + value.replace("\\", "\\\\").replace("'", "''").replace("\n", "\\n").replace(
            "\t", "\\t").replace("\r", "\\r").replace("\b", "\\b").replace("\f", "\\f") + "'"
    return "'" + value.replace("'", "''") + "'"


def load_option_sets(path):
    """Lines: `name | 'opt','value',... [| setting=value; setting=value]`; '#' starts a comment line."""
    sets = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split("|")
            if len(parts) < 2:
                raise SystemExit(f"{path}:{lineno}: expected 'name | options [| settings]'")
            name = parts[0].strip()
            options = parse_sql_pairs("|".join(parts[1:2]))
            settings = []
            if len(parts) > 2 and parts[2].strip():
                for item in parts[2].split(";"):
                    key, _, value = item.strip().partition("=")
                    settings.append((key.strip(), value.strip()))
            sets.append({"name": name, "options": options, "settings": settings})
    names = [s["name"] for s in sets]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        raise SystemExit(f"{path}: duplicate option set names {sorted(dups)}")
    return sets


def parse_bool(value):
    """PostgreSQL parse_bool (NULL means true for wal2json's boolean options); None if unparsable."""
    if value is None:
        return True
    v = value.strip().lower()
    if not v:
        return None
    for word, result in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(v):
            return result
    if len(v) >= 2 and "on".startswith(v):
        return True
    if len(v) >= 2 and "off".startswith(v):
        return False
    if v == "1":
        return True
    if v == "0":
        return False
    return None


def option_value(options, name, default=None):
    result = default
    for key, value in options:
        if key == name:
            result = value
    return result


def has_option(options, name):
    return any(key == name for key, _ in options)


def without(options, name):
    return [(k, v) for k, v in options if k != name]


def format_version(options):
    if not has_option(options, "format-version"):
        return 1
    value = option_value(options, "format-version")
    if value is None:
        return 2
    try:
        return int(value)
    except ValueError:
        return None


def bool_option(options, name, default):
    if not has_option(options, name):
        return default
    return parse_bool(option_value(options, name))


# ---------------------------------------------------------------- corpus

def corpus_directives(corpus_path):
    differences = set()
    with open(corpus_path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"--\s*@@\s*expect-difference:\s*(.*)$", line.strip())
            if m:
                for item in m.group(1).split(","):
                    item = item.strip()
                    if item not in KNOWN_DIFFERENCES:
                        raise SystemExit(f"{corpus_path}: unknown expect-difference '{item}'")
                    differences.add(item)
    return differences


# ---------------------------------------------------------------- plan

def plan(corpus_path, option_sets_path, outdir):
    differences = corpus_directives(corpus_path)
    sets = load_option_sets(option_sets_path)
    calls = {}  # (slot, options, settings) -> call id

    def call(slot, options, settings):
        key = json.dumps([slot, options, settings])
        if key not in calls:
            calls[key] = len(calls)
        return calls[key]

    cases = []
    for s in sets:
        options, settings = s["options"], s["settings"]
        if s["name"].startswith("perr-"):
            cases.append({"name": s["name"], "options": options, "settings": settings,
                          "pgstream": call("p", options, []), "wal2json": call("w", [], [])})
            continue
        case = {"name": s["name"], "options": options, "settings": settings,
                "pgstream": call("p", options, settings)}
        pgstream_options = options
        if has_option(options, "pgstream-pack-bytes"):
            pgstream_options = without(options, "pgstream-pack-bytes")
            case["unpacked"] = call("p", pgstream_options, settings)
        reference_options = pgstream_options
        if has_option(reference_options, "numeric-data-types-as-string"):
            case["numeric_as_string"] = bool_option(reference_options, "numeric-data-types-as-string", False)
            reference_options = without(reference_options, "numeric-data-types-as-string")
        reference_settings = settings
        if "bytea-escape" in differences and ("bytea_output", "escape") in [tuple(x) for x in settings]:
            reference_settings = [(k, "hex" if k == "bytea_output" else v) for k, v in settings]
            case["escape_reference"] = call("w", reference_options, settings)
        case["wal2json"] = call("w", reference_options, reference_settings)
        cases.append(case)

    # Catalog facts the documented transformations need, read under every search_path the peeks use
    # (format_type qualifies and quotes names depending on it).
    type_names_query = (
        "select distinct x from (select format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL)"
        " from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        " where a.attnum > 0 and not a.attisdropped"
        " and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')"
        " union all select format_type(typbasetype, typtypmod), format_type(typbasetype, NULL)"
        " from pg_type where typtype = 'd') s(t, u), lateral (values (t), (u)) v(x) where x like '\"%';")
    lines = ["\\set VERBOSITY terse",
             f"\\o {outdir}/catalog.types",
             type_names_query,
             f"\\o {outdir}/catalog.defaults",
             "select distinct pg_get_expr(adbin, adrelid) from pg_attrdef;",
             "\\o"]
    search_paths = sorted({v for s in sets for k, v in s["settings"] if k.lower() == "search_path"})
    for i, path in enumerate(search_paths):
        lines += [f"select set_config('search_path', {sql_literal(path)}, false);",
                  f"\\o {outdir}/catalog.types.{i}", type_names_query, "\\o", "reset search_path;"]
    for key, cid in calls.items():
        slot, options, settings = json.loads(key)
        lines.append(f"\\warn @@call {cid}")
        for k, v in settings:
            lines.append(f"select set_config({sql_literal(k)}, {sql_literal(v)}, false);")
        lines.append(f"\\o {outdir}/call{cid}.out")
        args = "".join(", " + sql_literal(k) + ", " + sql_literal(v) for k, v in options)
        lines.append(f"select lsn, xid, data from pg_logical_slot_peek_changes(:'{slot}_slot', :'upto'::pg_lsn, NULL{args});")
        lines.append("\\o")
        for k, _ in settings:
            lines.append(f"reset {k};")
    lines.append("\\warn @@call end")
    with open(os.path.join(outdir, "peeks.sql"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(outdir, "plan.json"), "w", encoding="utf-8") as f:
        json.dump({"differences": sorted(differences), "cases": cases, "calls": len(calls)}, f)


# ---------------------------------------------------------------- check helpers

def read_call(path):
    """Rows of a peek written as `lsn US xid US data` (US = 0x1f, which JSON output never contains raw before data):
    returns ([(lsn, xid)], [data])."""
    metas, datas = [], []
    for row in read_rows(path):
        lsn, xid, data = row.split(b"\x1f", 2)
        metas.append((lsn, xid))
        datas.append(data)
    return metas, datas


def read_rows(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        return []
    assert data.endswith(b"\0"), path
    return data[:-1].split(b"\0")


def read_errors(stderr_path):
    errors = {}
    current = None
    with open(stderr_path, "rb") as f:
        for line in f:
            text = line.decode("utf-8", "replace").rstrip("\n")
            m = re.match(r"@@call (\S+)$", text)
            if m:
                current = m.group(1)
                continue
            if current is None or current == "end":
                continue
            m = re.search(r"(ERROR|FATAL|PANIC):\s+(.*)$", text)
            if m:
                errors.setdefault(int(current), []).append(m.group(1) + ": " + m.group(2))
    return errors


def reject_constant(name):
    raise ValueError("non-JSON constant " + name)


VALID_ROWS = set()  # hashes of rows already parsed: many option sets print the same records


def json_parses(data):
    key = hash(data)
    if key in VALID_ROWS:
        return True
    try:
        json.loads(data.decode("utf-8", "surrogateescape"), parse_constant=reject_constant)
        VALID_ROWS.add(key)
        return True
    except ValueError:
        return False


def json_sequence_parses(data):
    """True if `data` is one or more JSON documents back to back (v1 write-in-chunks output)."""
    text = data.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder(parse_constant=reject_constant)
    pos = 0
    try:
        while pos < len(text):
            _, pos = decoder.raw_decode(text, pos)
    except ValueError:
        return False
    return True


def escape_json(text):
    """PostgreSQL's escape_json."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20:
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


ONE_JSON_STRING = re.compile(r'"[^"\\\x00-\x1f]*"')


def transform_quoted_types(rows, type_names):
    """wal2json appends a type name that starts with '"' raw. Where that paste is not exactly one JSON string
    (schema-qualified quoted names, embedded "", quoted array types in v1 pktypes) the output is invalid and
    pgstream JSON-escapes the name; where it is one JSON string ("Quoted Type") pgstream pastes it raw too
    (docs/wal2json-compatibility.md, deliberate difference 1)."""
    names = sorted((n for n in type_names if not ONE_JSON_STRING.fullmatch(n)), key=len, reverse=True)
    if not names:
        return rows, False
    alternation = b"|".join(re.escape(n.encode()) for n in names)
    pattern = re.compile(rb'("type":|\[|,|, )(' + alternation + rb')(?=[,\]}\n])')
    changed = False
    out = []
    for row in rows:
        new = pattern.sub(lambda m: m.group(1) + escape_json(m.group(2).decode()).encode(), row)
        changed |= new != row
        out.append(new)
    return out, changed


def transform_defaults(rows, defaults):
    """wal2json wraps include-default expressions in quotes without escaping; pgstream escapes them."""
    pairs = [('"' + d + '"', escape_json(d)) for d in defaults if escape_json(d) != '"' + d + '"']
    if not pairs:
        return rows, False
    pairs.sort(key=lambda p: len(p[0]), reverse=True)
    changed = False
    out = []
    for row in rows:
        new = row
        for raw, fixed in pairs:
            for prefix in (b'"default":', b"[", b",", b", "):
                new = new.replace(prefix + raw.encode(), prefix + fixed.encode())
        changed |= new != row
        out.append(new)
    return out, changed


MESSAGE_COMMA = re.compile(rb'^(\{\s*"change":\s*\[\s*),(\{\s*"kind":\s*"message",\s*"transactional":\s*false)')


def transform_message_comma(rows):
    changed = False
    out = []
    for row in rows:
        new = MESSAGE_COMMA.sub(rb"\1\2", row)
        changed |= new != row
        out.append(new)
    return out, changed


TOKEN = re.compile(rb'[ \t\n\r]+|"(?:[^"\\]|\\.)*"|[{}\[\]:,]|true|false|null|[-+0-9.eE]+|.', re.S)


def tokens_with_context(row):
    """Yields (token, is_value_position) where value positions are v2 "value" members and elements of v1
    columnvalues/keyvalues arrays."""
    stack = []  # entries: [kind, key of this container, current key, expecting key]
    for m in TOKEN.finditer(row):
        tok = m.group(0)
        first = tok[:1]
        if first in b" \t\n\r":
            yield tok, False
            continue
        top = stack[-1] if stack else None
        in_value = False
        if top is not None:
            if top[0] == "obj" and not top[3]:
                in_value = top[2] == b'"value"'
            elif top[0] == "arr":
                in_value = top[1] in (b'"columnvalues"', b'"keyvalues"')
        if tok in (b"{", b"["):
            container_key = top[2] if top is not None and top[0] == "obj" else None
            stack.append(["obj" if tok == b"{" else "arr", container_key, None, tok == b"{"])
            yield tok, False
        elif tok in (b"}", b"]"):
            if stack:
                stack.pop()
            yield tok, False
        elif tok == b":":
            if top is not None and top[0] == "obj":
                top[3] = False
            yield tok, False
        elif tok == b",":
            if top is not None and top[0] == "obj":
                top[3] = True
            yield tok, False
        elif first == b'"' and top is not None and top[0] == "obj" and top[3]:
            top[2] = tok
            yield tok, False
        else:
            yield tok, in_value


NON_FINITE = {b'"NaN"', b'"Infinity"', b'"-Infinity"'}


V2_NUMBER_VALUE = re.compile(rb'("value":)([-+0-9.eE]+)(?=[,}])')


def numeric_as_string_matches(reference_row, row):
    # Fast path for v2 records without NaN/Infinity: quote every number member "value" and compare.
    if reference_row.startswith(b'{"action"') and V2_NUMBER_VALUE.sub(rb'\1"\2"', reference_row) == row:
        return True
    return numeric_as_string_tokens_match(reference_row, row)


def numeric_as_string_tokens_match(reference_row, row):
    ref = list(tokens_with_context(reference_row))
    got = [t for t, _ in tokens_with_context(row)]
    if len(ref) != len(got):
        return False
    for (a, in_value), b in zip(ref, got):
        if a == b:
            if in_value and re.fullmatch(rb"[-+0-9.eE]+", a):
                return False  # a number left unquoted
            continue
        if not in_value:
            return False
        if re.fullmatch(rb"[-+0-9.eE]+", a) and b == b'"' + a + b'"':
            continue
        if a == b"null" and b in NON_FINITE:
            continue
        return False
    return True


def short_diff(expected, got, limit=3):
    lines = []
    n = max(len(expected), len(got))
    for i in range(n):
        e = expected[i] if i < len(expected) else None
        g = got[i] if i < len(got) else None
        if e != g:
            lines.append(f"    row {i + 1}: wal2json: {clip(e)}")
            lines.append(f"    row {i + 1}: pgstream: {clip(g)}")
            if len(lines) >= 2 * limit:
                break
    if len(expected) != len(got):
        lines.append(f"    rows: wal2json {len(expected)}, pgstream {len(got)}")
    return "\n".join(lines)


def clip(row, width=300):
    if row is None:
        return "(none)"
    text = row.decode("utf-8", "backslashreplace").replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= width else text[:width] + "..."


def first_difference(expected, got):
    for i in range(min(len(expected), len(got))):
        if expected[i] != got[i]:
            a, b = expected[i], got[i]
            j = 0
            while j < min(len(a), len(b)) and a[j] == b[j]:
                j += 1
            start = max(0, j - 60)
            return (f"    row {i + 1}, byte {j}:\n      wal2json: ...{clip(a[start:j + 120])}\n"
                    f"      pgstream: ...{clip(b[start:j + 120])}")
    return short_diff(expected, got)


# ---------------------------------------------------------------- check

def check(corpus_path, outdir):
    with open(os.path.join(outdir, "plan.json"), encoding="utf-8") as f:
        planned = json.load(f)
    corpus = os.path.splitext(os.path.basename(corpus_path))[0]
    differences = set(planned["differences"])
    errors = read_errors(os.path.join(outdir, "stderr"))
    type_names = sorted({r.decode() for name in os.listdir(outdir) if name.startswith("catalog.types")
                         for r in read_rows(os.path.join(outdir, name))})
    defaults = [r.decode() for r in read_rows(os.path.join(outdir, "catalog.defaults"))]
    observed = set()
    decoded_anything = False
    failures = 0
    passes = 0

    def rows_of(cid):
        return read_call(os.path.join(outdir, f"call{cid}.out"))[1]

    def metas_of(cid):
        return read_call(os.path.join(outdir, f"call{cid}.out"))[0]

    # Self-test of the harness (wal2json on both sides): the documented differences and pgstream's own options
    # cannot hold, so those cases are skipped and the declarations are not applied.
    self_test = os.environ.get("DIFF_PLUGIN", "pgstream") != "pgstream"
    if self_test:
        differences_declared, differences = differences, set()
    for case in planned["cases"]:
        label = f"{corpus}/{case['name']}"
        if self_test and (any(k in PGSTREAM_ONLY_OPTIONS for k, _ in case["options"])
                          or ("bytea-escape" in differences_declared
                              and ("bytea_output", "escape") in [tuple(x) for x in case["settings"]])):
            print(f"skip {label} (self-test)")
            continue
        problems = []
        options = case["options"]
        w_err = errors.get(case["wal2json"])
        p_err = errors.get(case["pgstream"])
        version = format_version(options)
        expects_error = case["name"].startswith("err-")
        if case["name"].startswith("perr-"):
            # pgstream-only option errors: the expected message is in the settings field (`error=...`).
            wanted = dict(case["settings"]).get("error", "")
            if not p_err or not any(wanted in e for e in p_err):
                problems.append(f"    expected pgstream error containing: {wanted}\n      got: {p_err}")
        elif expects_error and not w_err:
            problems.append("    option set is named err-* but wal2json raised no error")
        elif case["name"].startswith("any-") and w_err and w_err == p_err:
            pass  # either outcome is fine as long as both plugins agree
        elif not expects_error and w_err and w_err == p_err:
            problems.append(f"    both plugins raised an error: {w_err}")
        elif w_err or p_err:
            if "unpacked" in case and not p_err and errors.get(case["unpacked"]):
                problems.append("unpacked pgstream call failed: " + "; ".join(errors[case["unpacked"]]))
            elif w_err != p_err:
                problems.append(f"    errors differ:\n      wal2json: {w_err}\n      pgstream: {p_err}")
        else:
            reference = rows_of(case["wal2json"])
            decoded_anything |= any(b'"kind":"insert"' in r or b'"action":"I"' in r for r in reference)
            got = rows_of(case["pgstream"])
            got_metas = metas_of(case["pgstream"])
            if "unpacked" in case:
                packed = got
                got = rows_of(case["unpacked"])
                unpacked_metas = metas_of(case["unpacked"])
                problems += check_packed(packed, got, int(option_value(options, "pgstream-pack-bytes")))
                problems += check_packed_positions(packed, got_metas, unpacked_metas)
                got_metas = unpacked_metas
            # The SQL lsn/xid columns are what a consumer acknowledges: they must match row for row.
            if got_metas != metas_of(case["wal2json"]) and len(got) == len(reference):
                problems.append("    lsn/xid columns differ:\n" + short_diff(
                    [b"%s %s" % m for m in metas_of(case["wal2json"])], [b"%s %s" % m for m in got_metas]))
            if "escape_reference" in case:
                if rows_of(case["escape_reference"]) != reference:
                    observed.add("bytea-escape")
            # v1 with include-typmod=0 prints pg_type.typname, escaped by both plugins alike.
            if "quoted-type-names" in differences and (version == 2 or bool_option(options, "include-typmod", True)):
                reference, changed = transform_quoted_types(reference, type_names)
                if changed:
                    observed.add("quoted-type-names")
            if "default-escaping" in differences:
                reference, changed = transform_defaults(reference, defaults)
                if changed:
                    observed.add("default-escaping")
            if "v1-message-comma" in differences and version == 1:
                reference, changed = transform_message_comma(reference)
                if changed:
                    observed.add("v1-message-comma")
            if case.get("numeric_as_string"):
                if len(reference) != len(got) or not all(
                        numeric_as_string_matches(a, b) for a, b in zip(reference, got)):
                    bad = [i for i, (a, b) in enumerate(zip(reference, got)) if not numeric_as_string_matches(a, b)]
                    problems.append("    numeric-data-types-as-string: not wal2json's output with numbers quoted"
                                    f" (rows {len(reference)} vs {len(got)}, first bad row {bad[:1]})\n"
                                    + short_diff(reference[bad[0]:bad[0] + 1] if bad else reference,
                                                 got[bad[0]:bad[0] + 1] if bad else got, 1))
            elif reference != got:
                problems.append(first_difference(reference, got))
            if not (self_test and differences_declared):
                problems += check_json(got, version, options)
        if problems:
            failures += 1
            print(f"FAIL {label}")
            for p in problems:
                print(p)
        else:
            passes += 1
            print(f"ok {label}")
    if not decoded_anything:
        failures += 1
        print(f"FAIL {corpus}/sanity: wal2json decoded no change record in any case (harness or corpus problem)")
    for name in sorted(differences - observed):
        failures += 1
        print(f"FAIL {corpus}/expect-difference:{name} declared but never observed (stale declaration?)")
    with open(os.path.join(outdir, "counts"), "w") as f:
        f.write(f"{passes} {failures}\n")
    return failures


def check_json(rows, version, options):
    if version == 1 and bool_option(options, "write-in-chunks", False):
        if rows and not json_sequence_parses(b"".join(rows)):
            return ["    v1 write-in-chunks rows do not concatenate to valid JSON documents"]
        return []
    bad = [i + 1 for i, row in enumerate(rows) if not json_parses(row)]
    if bad:
        return [f"    invalid JSON from pgstream in rows {bad[:5]}: {clip(rows[bad[0] - 1])}"]
    return []


def check_packed(packed, unpacked, limit):
    problems = []
    lines = []
    for i, row in enumerate(packed):
        parts = row.split(b"\n")
        if len(parts) > 1 and len(row) > limit:
            problems.append(f"    packed row {i + 1} has {len(parts)} records and {len(row)} bytes > {limit}")
        for j, line in enumerate(parts):
            if not json_parses(line):
                problems.append(f"    packed row {i + 1} line {j + 1} is not JSON: {clip(line)}")
            elif j < len(parts) - 1 and line.startswith(b'{"action":"C"'):
                problems.append(f"    packed row {i + 1}: commit record is not the last record of its message")
        lines += parts
    if lines != unpacked and not problems:
        problems.append("    packed lines differ from the unpacked output:\n" + first_difference(unpacked, lines))
    if limit >= 4096 and any(r.startswith(b'{"action":"B"') for r in unpacked) and len(packed) >= len(unpacked):
        problems.append(f"    pgstream-pack-bytes={limit} packed nothing ({len(packed)} messages for"
                        f" {len(unpacked)} records)")
    return problems[:5]


def check_packed_positions(packed, packed_metas, unpacked_metas):
    """Each packed message must carry the lsn/xid of its first record."""
    index = 0
    for i, row in enumerate(packed):
        if index < len(unpacked_metas) and packed_metas[i] != unpacked_metas[index]:
            return [f"    packed row {i + 1} has lsn/xid {packed_metas[i]}, its first record {unpacked_metas[index]}"]
        index += row.count(b"\n") + 1
    return []


def parse_recvlogical_options(text):
    """`-o name[=value] ...` as pg_recvlogical takes them; a name without value is sent as NULL."""
    pairs = []
    words = text.split()
    for i, word in enumerate(words):
        if word == "-o":
            name, eq, value = words[i + 1].partition("=")
            pairs.append((name, value if eq else None))
    return pairs


def stream_check_all(corpus_path, outdir, sets_path):
    corpus = os.path.splitext(os.path.basename(corpus_path))[0]
    passes = failures = 0
    with open(sets_path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            label, both, extra = (part.strip() for part in line.rstrip("\n").split("|"))
            skip = os.path.join(outdir, f"{label}.skip")
            if os.path.exists(skip):
                print(open(skip).read().strip())
                continue
            failed = os.path.join(outdir, f"{label}.failed")
            if os.path.exists(failed):
                print(f"FAIL {corpus}/{label}\n    pg_recvlogical failed: {open(failed).read().strip()}")
                for side in "wp":
                    with open(os.path.join(outdir, f"{label}.{side}.err"), errors="replace") as err:
                        for errline in err.read().splitlines()[:3]:
                            print("      " + errline)
                failures += 1
                continue
            if stream_check(corpus_path, outdir, label, both, extra, f"{corpus}/{label}"):
                failures += 1
            else:
                passes += 1
    with open(os.path.join(outdir, "stream-counts"), "w") as f:
        f.write(f"{passes} {failures}\n")
    return failures


def stream_check(corpus_path, outdir, label, both, extra, display):
    """Compares pg_recvlogical output (one message per line) of wal2json and pgstream through the walsender."""
    differences = corpus_directives(corpus_path)
    options = parse_recvlogical_options(both)
    pgstream_options = options + parse_recvlogical_options(extra)
    with open(os.path.join(outdir, f"{label}.w"), "rb") as f:
        reference = f.read()
    with open(os.path.join(outdir, f"{label}.p"), "rb") as f:
        got = f.read()
    version = format_version(options)
    type_names = sorted({r.decode() for name in os.listdir(outdir) if name.startswith("catalog.types")
                         for r in read_rows(os.path.join(outdir, name))})
    defaults = [r.decode() for r in read_rows(os.path.join(outdir, "catalog.defaults"))]
    problems = []
    self_test = os.environ.get("DIFF_PLUGIN", "pgstream") != "pgstream"
    declared = differences
    if self_test:
        differences = set()
    if "quoted-type-names" in differences and (version == 2 or bool_option(options, "include-typmod", True)):
        reference = transform_quoted_types([reference], type_names)[0][0]
    if "default-escaping" in differences:
        reference = transform_defaults([reference], defaults)[0][0]
    if "v1-message-comma" in differences and version == 1:
        reference = re.compile(MESSAGE_COMMA.pattern, re.M).sub(rb"\1\2", reference)
    ref_lines = reference.split(b"\n")
    got_lines = got.split(b"\n")
    if bool_option(pgstream_options, "numeric-data-types-as-string", False) and version == 2:
        if len(ref_lines) != len(got_lines) or not all(
                numeric_as_string_matches(a, b) for a, b in zip(ref_lines, got_lines)):
            problems.append("    numeric-data-types-as-string over the walsender: not wal2json's output with numbers"
                            " quoted\n" + first_difference(ref_lines, got_lines))
    elif reference != got:
        problems.append(first_difference(ref_lines, got_lines))
    if not reference.strip():
        problems.append("    wal2json streamed nothing: the walsender case tests nothing")
    if self_test and declared:
        pass  # wal2json's own output is invalid JSON exactly where the declared differences are
    elif version == 2 or not (bool_option(options, "pretty-print", False)
                            or bool_option(options, "write-in-chunks", False)):
        bad = [i + 1 for i, line in enumerate(got_lines[:-1]) if not json_parses(line)]
        if bad:
            problems.append(f"    invalid JSON from pgstream in streamed lines {bad[:5]}")
    if problems:
        print(f"FAIL {display}")
        for p in problems:
            print(p)
        return 1
    print(f"ok {display}")
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "stream-check":
        return 1 if stream_check_all(*sys.argv[2:5]) else 0
    if len(sys.argv) == 5 and sys.argv[1] == "plan":
        plan(sys.argv[2], sys.argv[3], sys.argv[4])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        return 1 if check(sys.argv[2], sys.argv[3]) else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
