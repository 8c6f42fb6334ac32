#!/usr/bin/env python3
"""Sends the same requests to two pgstream-search-mock binaries and compares the answers byte for byte.

    bench/search-mock-same-answers.py OLD_BINARY NEW_BINARY

Both flavors. The requests cover _bulk's edge cases (malformed and unknown action lines, missing sources,
strict mappings, type errors, versions, deletes of missing documents, require_alias, refresh, op_type,
update actions, blank lines, a body without its final newline, validation problems, escaped ids, item
rejections) and read the stored state back (GET _doc, _search, _count). What differs by design from run to
run is blanked before comparing: `took`, index uuids and auto-generated 20-character ids. Exits 1 on the first
difference (printing both answers), else prints how many requests matched.
"""
import http.client
import json
import re
import subprocess
import sys

NDJSON = "application/x-ndjson"
JSONT = "application/json"


def start(binary, flavor):
    process = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--flavor", flavor],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return process, int(process.stdout.readline().strip())


def normalize(body):
    body = re.sub(rb'"took":\d+', b'"took":0', body)
    body = re.sub(rb'"index_uuid":"(?!_na_)[A-Za-z0-9_-]{22}"', b'"index_uuid":"U"', body)
    body = re.sub(rb'/[A-Za-z0-9_-]{22}\] already exists', b'/U] already exists', body)
    body = re.sub(rb'"_id":"[A-Za-z0-9_-]{20}"', b'"_id":"AUTO"', body)
    return body


def hits_in_write_order(body):
    """A search answer sorted by _id puts auto-generated ids in a random order: its hits by (index, seq_no),
    the auto-generated ids in their sort values blanked (the rest as written, compared byte for byte)."""
    try:
        answer = json.loads(body, strict=False)
    except ValueError as error:
        sys.exit(f"search-mock-same-answers: a search answer is not JSON ({error}): {body[max(0, error.pos - 200):error.pos + 50]!r}")
    hits = answer.get("hits", {}).get("hits")
    if not hits:
        return body
    for hit in hits:
        if hit.get("_id") == "AUTO":
            hit["sort"] = ["AUTO"]
    hits.sort(key=lambda hit: (hit["_index"], hit.get("_seq_no", 0)))
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()


def send(port, method, path, body, content_type):
    # A connection per request: what one request answers does not depend on the connection's history.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {}
    if body is not None:
        headers["Content-Type"] = content_type
    connection.request(method, path, body=body, headers=headers)
    answer = connection.getresponse()
    content = normalize(answer.read())
    connection.close()
    if "_search" in path and b'"_id":"AUTO"' in content:
        content = hits_in_write_order(content)
    return answer.status, answer.getheader("Content-Type"), content


def lines(*items, end="\n"):
    return ("\n".join(items) + end).encode()


def action(name, **parameters):
    return json.dumps({name: parameters}, separators=(",", ":"))


def doc(**fields):
    return json.dumps(fields, separators=(",", ":"))


def requests():
    """(method, path, body bytes or None, content type)"""
    out = []

    def req(method, path, body=None, content_type=JSONT):
        if isinstance(body, str):
            body = body.encode()
        out.append((method, path, body, content_type))

    def bulk(body, path="/_bulk"):
        req("POST", path, body, NDJSON)

    table = "dc3ghlb4qcijqnq265f0"
    strict = {"settings": {"index.number_of_shards": 1, "index.number_of_replicas": 1},
              "mappings": {"dynamic": "strict", "properties": {
                  "_table": {"type": "keyword"}, "_change_version": {"type": "long"},
                  f"{table}-1": {"type": "long"}, f"{table}-2": {"type": "integer"},
                  f"{table}-3": {"type": "keyword", "ignore_above": 20, "fields": {"text": {"type": "text"}}},
                  "when": {"type": "date"}, "flag": {"type": "boolean"}, "ratio": {"type": "float"},
                  "obj": {"properties": {"a": {"type": "long"}}},
                  "bench_rows": {"properties": {"id": {"type": "alias", "path": f"{table}-1"}}}}},
              "aliases": {"public": {}}}
    req("PUT", "/public-1", json.dumps(strict))
    req("PUT", "/loose", json.dumps({"mappings": {"dynamic": "false", "properties": {"n": {"type": "long"}}}}))
    req("PUT", "/two-a", json.dumps({"aliases": {"two": {}}}))
    req("PUT", "/two-b", json.dumps({"aliases": {"two": {}}}))
    req("PUT", "/wa-1", json.dumps({"aliases": {"wa": {"is_write_index": True}}}))
    req("PUT", "/wa-2", json.dumps({"aliases": {"wa": {}}}))

    def row(i, **extra):
        fields = {"_table": table, f"{table}-1": i, f"{table}-2": i * 3, f"{table}-3": f"payload {i}",
                  "_change_version": 1000 + i}
        fields.update(extra)
        return doc(**fields)

    def ext(i, version, index="public", **more):
        return action("index", _index=index, _id=f"{table}_{i}", version=version, version_type="external",
                      **more)

    # The indexer's shape, several items.
    bulk(lines(*[x for i in range(1, 6) for x in (ext(i, 100 + i), row(i))]))
    # Same again: version conflicts; then higher versions: updated.
    bulk(lines(*[x for i in range(1, 4) for x in (ext(i, 100 + i), row(i))]))
    bulk(lines(*[x for i in range(1, 4) for x in (ext(i, 200 + i), row(i))]))
    # external_gte equal and lower.
    bulk(lines(action("index", _index="public", _id=f"{table}_1", version=201, version_type="external_gte"), row(1),
               action("index", _index="public", _id=f"{table}_2", version=1, version_type="external_gte"), row(2)))
    # Strict mapping: unknown fields, nested unknown, type errors, range, booleans, dates, null, "".
    bad_docs = [row(10, extra=1), row(11, obj={"b": 1}), doc(**{f"{table}-1": "abc"}),
                doc(**{f"{table}-2": 3000000000}), doc(**{f"{table}-2": "12"}), doc(**{f"{table}-2": 1.7}),
                doc(flag="yes"), doc(flag="true"), doc(flag=1), doc(when="2026-01-01T00:00:00+00"),
                doc(when="2026-01-01"), doc(when=1764680000000), doc(when="not a date"),
                doc(**{f"{table}-1": None, f"{table}-3": ""}), doc(ratio="1.5e3"), doc(ratio="x"),
                doc(**{f"{table}-3": "a string longer than twenty characters"}), doc(**{f"{table}-3": 12}),
                doc(**{f"{table}-3": ["a", "b"]}), doc(**{f"{table}-1": [1, 2, "x"]}), doc(obj={"a": "7"}),
                doc(obj=5), doc(**{f"{table}-1": {"x": 1}}), doc(bench_rows={"id": 5}), '{"_table":"t","_table":"u"}',
                '{"\\u005ftable":"escaped key"}', '{"_table":"\\u00e9t\\u00e9"}', "[1,2]", '"just a string"',
                "{not json", '{"_table":"t"} trailing', "{}", '{"a.b":1}', '{"obj.a":1}']
    # Numbers, literals, strings and spacing at the edges of what the line scanner reads itself.
    for number in ("0", "-0", "01", "-01", "4294967295", "4294967296", "2147483647", "2147483648", "-2147483648",
                   "-2147483649", "999999999999999999", "-999999999999999999", "1000000000000000000",
                   "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
                   "18446744073709551615", "18446744073709551616", "1.0", "1e3", "1E3", "-", "-a", "1.", "+1",
                   "0x10", "Infinity", "NaN", "true", "false", "null", "tru", "nulll", "[]", "[1,2]", "{}"):
        for key in (f"{table}-1", f"{table}-2", "ratio", "flag", "when", "_table"):
            bad_docs.append('{"%s":%s}' % (key, number))
    bad_docs += ['{"_table":"a\\"b"}', '{"_table":"a\\\\b"}', '{"_table":"a\\u0000b"}', '{"_table":"tab\there"}',
                 '{"_table":"ctl\x01"}', '{"_table":"\u00e9\u00e8 accents"}', '{ "_table" : "spaced" , "_change_version" : 5 }',
                 '\t{"_table":"lead"}', '{"_table":"x"}\t\r ', '{"_table":"x"} ,', '{"_table":"x",}', '{"_table" "x"}',
                 '{"_table":"x"}{"_table":"y"}', '{"_table":"' + "long " * 40 + '"}', '{"_table":""}', '{"":1}',
                 '{"_table":"x","_table":5}', '{"obj":{"a":1,"a":2}}', '{"obj":{}}', '{"obj":[]}', '{"obj":[{"a":1},{"a":2}]}',
                 '[{"_table":"x"}]', '"{}"', '{"_table":"' + "x" * 15 + '"}',
                 '{"_table":"' + "y" * 16 + '"}', '{"_table":"' + "z" * 17 + '"}', '{"' + "k" * 31 + '":1}']
    items = []
    for n, source in enumerate(bad_docs):
        items += [action("index", _index="public", _id=f"bad{n}"), source]
    bulk(lines(*items))
    # The same documents on a dynamic index and a dynamic: false one.
    bulk(lines(*[x for n, source in enumerate(bad_docs) for x in (action("index", _index="dyn", _id=f"d{n}"), source)]))
    bulk(lines(*[x for n, source in enumerate(bad_docs) for x in (action("create", _index="loose", _id=f"l{n}"), source)]))
    # NUL bytes (on an index no search reads: the mock keeps the source's text, NUL included).
    bulk(lines(action("index", _index="zero", _id="z1"), '{"_table":"\x00"}', action("index", _index="zero", _id="z2"),
               '{"_table":"x"}\x00', action("index", _index="zero", _id="z3"), '{"_table":"x"}\x00 ',
               action("index", _index="zero", _id="z4") + "\x00", doc(a=1)))
    bulk(lines('{"index":{"_index":"zero","_id":"z\x005"}}', doc(a=1)))
    # Deletes: existing, missing (internal: no index auto-created; external: a tombstone), then writes over them.
    bulk(lines(action("delete", _index="public", _id=f"{table}_4"), action("delete", _index="public", _id="nope"),
               action("delete", _index="gone-internal", _id="x"),
               action("delete", _index="gone-external", _id="x", version=5, version_type="external"),
               ext(4, 50), row(4), ext(4, 500), row(4),
               action("index", _index="gone-external", _id="x", version=4, version_type="external"), doc(a=1),
               action("index", _index="gone-external", _id="x", version=6, version_type="external"), doc(a=1)))
    req("HEAD", "/gone-internal")
    # create: new, duplicate; op_type create on index; auto ids; numeric and odd ids.
    bulk(lines(action("create", _index="public", _id="c1"), row(30), action("create", _index="public", _id="c1"), row(30),
               action("index", _index="public", _id="c2", op_type="create"), row(31),
               action("index", _index="public", _id="c2", op_type="create"), row(31),
               action("index", _index="public", _id="c3", op_type="index"), row(32),
               action("index", _index="public"), row(33), action("create", _index="dyn"), doc(q=1),
               '{"index":{"_index":"public","_id":12345}}', row(34), '{"index":{"_index":"public","_id":1.5}}', row(35),
               action("index", _index="public", _id='quote"and\\back'), row(36),
               action("index", _index="public", _id="tab\there"), row(37),
               action("index", _index="public", _id="ünïcödé"), row(38),
               action("index", _index="public", _id="x" * 40), row(39),
               action("index", _index="public", _id=""), row(40),
               action("delete", _index="public", _id="")))
    # if_seq_no / if_primary_term.
    bulk(lines(action("index", _index="public", _id=f"{table}_5", if_seq_no=4, if_primary_term=1), row(5),
               action("index", _index="public", _id=f"{table}_5", if_seq_no=999, if_primary_term=1), row(5),
               action("index", _index="public", _id=f"{table}_5", if_seq_no=0, if_primary_term=2), row(5),
               action("index", _index="public", _id="no-such", if_seq_no=0, if_primary_term=1), row(5),
               action("delete", _index="public", _id="c3", if_seq_no=0, if_primary_term=1)))
    # Aliases: several indices without a write index, a write index, require_alias.
    bulk(lines(action("index", _index="two", _id="1"), doc(a=1), action("index", _index="wa", _id="1"), doc(a=1),
               action("index", _index="wa-2", _id="1", require_alias=True), doc(a=1),
               action("index", _index="wa", _id="2", require_alias=True), doc(a=2),
               action("index", _index="newone", _id="1", require_alias=True), doc(a=1),
               action("index", _index="newtwo", _id="1", require_alias=False), doc(a=1)))
    bulk(lines(action("index", _index="wa-1", _id="3"), doc(a=3), action("index", _index="wa", _id="4"), doc(a=4),
               action("index", _index="wa", _id="5", require_alias=False), doc(a=4)), "/_bulk?require_alias=true")
    bulk(lines(action("index", _id="6"), doc(a=6), action("index", _index="wa-2", _id="7"), doc(a=7),
               action("delete", _id="6")), "/wa/_bulk")
    bulk(lines(action("index", _id="6"), doc(a=6)), "/wa/_bulk?require_alias=true")
    bulk(lines(action("index", _id="6"), doc(a=6)), "/wa-1/_bulk?require_alias=true")
    # Invalid and odd index names.
    bulk(lines(action("index", _index="UPPER", _id="1"), doc(a=1), action("index", _index="_under", _id="1"), doc(a=1),
               action("index", _index="with space", _id="1"), doc(a=1), action("index", _index="a\"b", _id="1"), doc(a=1),
               action("index", _index="-dash", _id="1"), doc(a=1), action("index", _index="ok.dot", _id="1"), doc(a=1),
               action("index", _index="..", _id="1"), doc(a=1), action("index", _index="x" * 300, _id="1"), doc(a=1)))
    # Refresh parameters.
    for refresh in ("", "true", "wait_for", "false", "bogus"):
        bulk(lines(action("index", _index="public", _id=f"r{refresh}"), row(50)), "/_bulk?refresh=" + refresh)
    bulk(lines(action("index", _index="public", _id="r2"), row(51), action("index", _index="dyn", _id="r2"), doc(a=1),
               action("delete", _index="public", _id="r2")), "/_bulk?refresh")
    req("POST", "/_bulk?unknown=1", lines(action("index", _index="public", _id="u"), row(1)), NDJSON)
    req("POST", "/_bulk?refresh=bogus", b"", NDJSON)
    req("POST", "/_bulk?refresh=bogus", b'{"index":{}}', NDJSON)
    req("POST", "/_bulk?refresh=bogus", lines("{bad"), NDJSON)
    # Update actions, also mixed with others.
    bulk(lines('{"update":{"_index":"public","_id":"1"}}', '{"doc":{"a":1}}', action("index", _index="public", _id="u2"), row(60)))
    bulk(lines('{"update":{"_id":"1"}}', '{"doc":{"a":1}}'))
    bulk(lines('{"update":{"_index":"public"}}', '{"doc":{"a":1}}'))
    # Blank lines, whitespace, \r.
    bulk(b"\n\n" + lines(action("index", _index="public", _id="b1"), row(70)) + b"   \n\t\n\r\n" +
         lines(action("delete", _index="public", _id="b1")) + b" \r \n")
    bulk(lines(" " + action("index", _index="public", _id="b2"), row(71)))
    bulk(lines(action("index", _index="public", _id="b3") + "  ", " " + row(72) + " "))
    bulk(lines(action("index", _index="public", _id="b4"), "", row(73)))
    bulk(lines(action("index", _index="public", _id="b5") + "\r", row(74) + "\r"))
    bulk(b"{\"index\":{\"_index\":\"public\",\"_id\":\"b6\"}}\r\n" + row(75).encode() + b"\r\n")
    bulk(b"\n\n \n")
    bulk(b"")
    bulk(b"\n")
    # No trailing newline (also a lone action, a truncated source).
    bulk(lines(action("index", _index="public", _id="t1"), row(80), end=""))
    bulk(action("delete", _index="public", _id="t1").encode())
    bulk(lines(action("index", _index="public", _id="t2"), row(81))[:-5])
    # Missing source.
    bulk(lines(action("index", _index="public", _id="m1")))
    bulk(lines(action("index", _index="public", _id="m1"), row(1), action("create", _index="public", _id="m2")))
    bulk(lines(action("delete", _index="public", _id="m3"), action("index", _index="public", _id="m4")))
    # Malformed action lines, alone and after good items, with validation problems before them.
    malformed = ["{bad", "[]", '"index"', "5", "null", "{}", '{"foo":{}}', '{"index":1}', '{"index":[]}',
                 '{"index":"x"}', '{"index":null}', '{"index":{"_index":"public","bogus":1}}',
                 '{"index":{"_index":"public","_id":"1"},"delete":{}}', '{"index":{"_index":"public","_id":"1"}} x',
                 '{"index":{"_index":"public","_id":"1","_source":{"includes":["a"]}}}',
                 '{"index":{"_index":"public","_id":"1","routing":"r","pipeline":"p","retry_on_conflict":3}}',
                 '{"index":{"_index":"public","_id":"1","dynamic_templates":{"a":"b"}}}',
                 '{"index":{"_index":"public","_id":{"a":1}}}', '{"index":{"_index":5,"_id":"x1"}}',
                 '{"index":{"_index":"public","_id":"x2","version":"7","version_type":"external"}}',
                 '{"index":{"_index":"public","_id":"x3","version":7.5,"version_type":"external"}}',
                 '{"index":{"_index":"public","_id":"x4","require_alias":"true"}}',
                 '{"index":{"_index":"public","_id":"x5","op_type":"delete"}}',
                 '{"index":{"_index":"public","_id":"x6","op_type":5}}',
                 '{"index":{"_index":"public","_index":"dyn","_id":"x7"}}',
                 '{"index":{"_index":"public","_id":"x8","_id":"x9"}}', '{"delete":{"_index":"public"}}',
                 '{"index":{"_index":"public","_id":"x10","if_seq_no":"1","if_primary_term":1}}',
                 '{"index":{"":1}}', '{"INDEX":{}}', '{ "index" : { "_index" : "public" , "_id" : "x11" } }',
                 '{"index":{"_index":"pub\\u006cic","_id":"x12"}}', '{"create":{"_index":"public","_id":"x13","op_type":"create"}}',
                 '{"delete":{"_index":"public","_id":"x14","op_type":"create"}}',
                 '{"index":{"_index":"public","_id":"x15","version":4294967296,"version_type":"external"}}',
                 '{"index":{"_index":"public","_id":"x16","version":18446744073709551615,"version_type":"external"}}',
                 '{"index":{"_index":"public","_id":"x17","version":9223372036854775807,"version_type":"external_gte"}}',
                 '{"index":{"_index":"public","_id":"x18","version":-1,"version_type":"external"}}',
                 '{"index":{"_index":"public","_id":"x19","if_seq_no":-2147483649,"if_primary_term":1}}',
                 '{"index":{"_index":"public","_id":"x20","if_seq_no":0,"if_primary_term":-0}}',
                 '{"index":{"_index":"public","_id":"x21","require_alias":false,"routing":null}}',
                 '{"index":{"_index":"public","_id":"x\\"22"}}', '{"index":{"_index":"public","_id":"x\\u0032\\u0033"}}',
                 '{"index":{"_index":"public","_id":"x24"}}\t \r', '{"index":{"_index":"public","_id":"x25"}} ,',
                 '\t{"index":{"_index":"public","_id":"x26"}}', '{"index":{"_index":"public","_id":"x27",}}',
                 '{"index":{"_index":"public","_id":"x28"}', '{"index":{"_index":"public","_id":"\x01"}}',
                 '{"index":{"_index":"public","_id":"x29","version":1.5e3,"version_type":"external"}}',
                 '{"index":{"_index":"public","_id":"x30","version":01,"version_type":"external"}}',
                 '{"create":{"_index":"public","_id":"x31","_source":[]}}', '{"delete":{}}', '{"index":{}}']
    for line in malformed:
        bulk(lines(line, row(90)))
        bulk(lines(action("index", _index="public", _id="p1"), row(91), line, row(92)))
        bulk(lines(action("index", _index="public", _id="p2", version=3), row(91), line, row(92)))
        bulk(lines(line, row(90)), "/dyn/_bulk")
    # Validation problems: several, in order, and with a missing index.
    bulk(lines(action("index", _id="v1"), doc(a=1)))
    bulk(lines(action("delete", _index="public"), action("index", _index="public", _id="v2", version=3), doc(a=1),
               action("index", _index="public", _id="v3", version_type="external"), doc(a=1),
               action("index", _index="public", _id="v4", version=-2, version_type="external"), doc(a=1),
               action("create", _index="public", _id="v5", version=3, version_type="external"), doc(a=1),
               action("index", _index="public", _id="v6", version_type="force"), doc(a=1),
               action("index", _index="public", _id="v7", version_type="bogus", version=1), doc(a=1),
               action("index", _index="public", _id="v8", if_seq_no=1), doc(a=1),
               action("index", _index="public", _id="v9", if_seq_no=-1, if_primary_term=1), doc(a=1),
               action("index", _index="public", _id="v10", if_seq_no=1, if_primary_term=1, version=3,
                      version_type="external_gte"), doc(a=1),
               action("index", _index="public", _id="y" * 513), doc(a=1),
               action("index", _id="v11"), doc(a=1)))
    bulk(lines(action("index", _index="public", _id="v12", version=3), doc(a=1), action("index", _index="public", _id="v13")))
    bulk(lines(action("index", _index="public", _id="v14", version=3), doc(a=1), "{bad"))
    bulk(lines(action("index", _index="public", _id="z" * 512), row(93)))
    # Item rejections by the fault injector.
    req("POST", "/_mock/faults", '{"reject_bulk_items_ratio":0.34}')
    bulk(lines(*[x for i in range(100, 110) for x in (ext(i, 1000 + i), row(i))], '{"update":{"_index":"public","_id":"1"}}', "{}",
               action("delete", _index="public", _id=f"{table}_100")))
    req("DELETE", "/_mock/faults")
    req("POST", "/_mock/faults", '{"reject_requests":1}')
    bulk(lines(ext(120, 1), row(120)))
    bulk(lines(ext(120, 1), row(120)))
    req("DELETE", "/_mock/faults")
    # Content types.
    req("POST", "/_bulk", lines(ext(121, 1), row(121)), "text/plain")
    req("POST", "/_bulk", lines(ext(122, 1), row(122)), JSONT)
    req("PUT", "/_bulk", lines(ext(123, 1), row(123)), NDJSON)
    req("GET", "/_bulk", None, NDJSON)
    req("POST", "/public/_bulk", lines(action("index", _id="dflt"), row(124), action("index", _index="dyn", _id="dflt"), doc(a=1)), NDJSON)
    # A large indexer-like request.
    bulk(lines(*[x for i in range(1000, 1600) for x in (ext(i, 5000 + i), row(i, _change_version=5000 + i))]))
    # A vector field (the flavor's own type and the other's).
    req("PUT", "/vec-os", json.dumps({"settings": {"index.knn": True}, "mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 3}}}}))
    req("PUT", "/vec-es", json.dumps({"mappings": {"properties": {"v": {"type": "dense_vector", "dims": 3}}}}))
    for index in ("vec-os", "vec-es"):
        bulk(lines(action("index", _index=index, _id="1"), doc(v=[1, 2, 3]), action("index", _index=index, _id="2"), doc(v=[1, 2]),
                   action("index", _index=index, _id="3"), doc(v="x")))
    # Refresh semantics on an index without periodic refresh: overwrites, deletes and re-indexing between
    # refreshes, searches before and after each refresh, refresh=true/wait_for, _doc, _delete_by_query.
    req("PUT", "/nrt", json.dumps({"settings": {"index.refresh_interval": "-1"}}))
    def nrt_state():
        req("POST", "/nrt/_search?size=100&version=true&seq_no_primary_term=true&sort=_id:asc", "{}")
        req("GET", "/nrt/_count")
    for rnd in range(3):
        items = []
        for i in range(12):
            key = f"k{(i * 7 + rnd * 5) % 10}"
            if (i + rnd) % 4 == 3:
                items += [action("delete", _index="nrt", _id=key)]
            else:
                items += [action("index", _index="nrt", _id=key), doc(n=i, r=rnd)]
        bulk(lines(*items))
        nrt_state()
        req("GET", "/nrt/_doc/k3")
        req("GET", "/nrt/_doc/k4")
        req("POST", "/nrt/_refresh")
        nrt_state()
    bulk(lines(action("index", _index="nrt", _id="k1"), doc(n=100), action("delete", _index="nrt", _id="k1"),
               action("index", _index="nrt", _id="k1"), doc(n=101), action("delete", _index="nrt", _id="k2")))
    nrt_state()
    bulk(lines(action("index", _index="nrt", _id="k5"), doc(n=102), action("delete", _index="nrt", _id="k5")), "/_bulk?refresh=true")
    nrt_state()
    bulk(lines(action("index", _index="nrt", _id="k6"), doc(n=103), action("index", _index="nrt", _id="k6"), doc(n=104)), "/_bulk?refresh=wait_for")
    nrt_state()
    req("PUT", "/nrt/_doc/k7?refresh=true", json.dumps({"n": 105}))
    req("DELETE", "/nrt/_doc/k7")
    req("PUT", "/nrt/_doc/k7", json.dumps({"n": 106}))
    req("DELETE", "/nrt/_doc/k8?refresh=wait_for")
    nrt_state()
    req("POST", "/nrt/_delete_by_query", json.dumps({"query": {"range": {"n": {"lte": 5}}}}))
    nrt_state()
    req("POST", "/nrt/_refresh")
    nrt_state()
    bulk(lines(action("index", _index="nrt", _id="k0"), doc(n=107)))
    req("POST", "/nrt/_delete_by_query?refresh=true", json.dumps({"query": {"match_all": {}}}))
    nrt_state()
    req("POST", "/nrt/_refresh")
    nrt_state()
    # Read the state back.
    req("POST", "/_refresh")
    for index in ("public", "dyn", "loose", "wa", "wa-1", "wa-2", "two", "gone-external", "newtwo", "vec-os", "vec-es"):
        req("POST", f"/{index}/_search?size=10000&version=true&seq_no_primary_term=true&sort=_id:asc", "{}")
        req("GET", f"/{index}/_count")
    for i in list(range(0, 12)) + [100, 101, 1000, 1599]:
        req("GET", f"/public/_doc/{table}_{i}")
    req("GET", "/public/_search", json.dumps({"query": {"term": {f"{table}-3.text": "payload"}}, "size": 3, "sort": [{f"{table}-1": "desc"}]}))
    req("GET", "/public/_search", json.dumps({"query": {"range": {"bench_rows.id": {"gte": 3, "lte": 1005}}}, "size": 100}))
    req("GET", "/public/_search", json.dumps({"query": {"match": {f"{table}-3": "payload 7"}}}))
    req("GET", "/dyn/_mapping")
    req("GET", "/public-1/_mapping")
    return out


def main():
    old_binary, new_binary = sys.argv[1], sys.argv[2]
    total = 0
    for flavor in ("opensearch", "elasticsearch"):
        old_process, old = start(old_binary, flavor)
        new_process, new = start(new_binary, flavor)
        try:
            for number, (method, path, body, content_type) in enumerate(requests()):
                a = send(old, method, path, body, content_type)
                b = send(new, method, path, body, content_type)
                total += 1
                if a != b:
                    print(f"{flavor} request {number}: {method} {path} {body[:300] if body else body!r}")
                    print(f"  old: {a[0]} {a[1]} {a[2][:2000]!r}")
                    print(f"  new: {b[0]} {b[1]} {b[2][:2000]!r}")
                    sys.exit(1)
        finally:
            for process in (old_process, new_process):
                process.terminate()
                process.wait()
    print(f"search-mock-same-answers: {total} requests, all answers equal")


if __name__ == "__main__":
    main()
