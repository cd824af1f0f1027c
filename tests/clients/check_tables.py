#!/usr/bin/env python3
"""Open streamscope's Parquet output with real clients and check it against the truth.

    check_tables.py OUT TRUTH_JSON SCHEMA_JSON

OUT is a folder written by `streamscope analyze` (flows.parquet, flow_bins.parquet,
run.json), TRUTH_JSON the ground truth capgen wrote next to the capture, SCHEMA_JSON the
output of `streamscope schema --json`.

- pyarrow: every table's columns, types and nullability equal the declared schema
  exactly; no unsigned types; timestamps are timestamp[us, tz=UTC]; every column chunk
  is ZSTD; created_by starts with "streamscope"; the key-value metadata names the table.
- DuckDB: the same files through read_parquet: the types DuckDB sees, REQUIRED/OPTIONAL
  as declared, ZSTD per column chunk, and SQL queries whose results are compared with
  the truth (per-flow counters, timestamps and TCP facts; flow_bins totals per flow,
  order and alignment; run.json totals; a bitrate-per-second series).
- The per-flow comparison runs again on rows read through pyarrow, and through pandas
  when pandas is installed (optional).

    check_tables.py --ott OUT TRUTH_JSON SCHEMA_JSON

is for captures with HTTP in clear, TLS and QUIC (TRUTH_JSON from capgen or from
tools/testbed): the same schema checks with pyarrow and DuckDB, then the http, flows and
segments columns that the demo leaves empty or null, read by each client with the
declared types (lists as lists, dictionaries decoded, timestamps as UTC) and compared
with the truth: http rows per role and status, hosts, path templates ({cred} in panel
stream paths), request times (capgen); SNI, ALPN, TLS and QUIC versions, http_host,
service and class per flow; segments by method. It prints the features it saw non-empty
on a line `check_tables: non-empty: ...`.

Exits 1 with a message on the first mismatch, 3 when duckdb or pyarrow is missing;
prints "N checks passed" on success.
"""

import json
import math
import os
import sys
from datetime import timedelta

try:
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
except ImportError as e:  # pragma: no cover - environment problem, not a table problem
    print(
        f"check_tables: missing Python module ({e}); install the clients with "
        "`python3 -m pip install duckdb pyarrow`",
        file=sys.stderr,
    )
    sys.exit(3)

try:
    import pandas as pd
except ImportError:
    pd = None


class Mismatch(Exception):
    pass


PASSED = 0

# Bins with downstream bytes up to which the bitrate percentiles are exact
# (crates/flow/src/rate.rs); past it they are within 1 %.
EXACT_LIMIT = 64


def check(cond, msg):
    """Counts one check; raises with `msg` (a string or a callable giving one) on failure."""
    global PASSED
    if not cond:
        raise Mismatch(msg() if callable(msg) else msg)
    PASSED += 1


def eq(ours, expected, what):
    check(ours == expected, lambda: f"{what}: streamscope has {ours!r}, expected {expected!r}")


# The type DuckDB reports for each declared (pyarrow-spelled) type.
DUCKDB_TYPES = {
    "int64": "BIGINT",
    "int32": "INTEGER",
    "bool": "BOOLEAN",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE",
    "dictionary<values=string, indices=int32, ordered=0>": "VARCHAR",
    "list<item: string not null>": "VARCHAR[]",
}

PROTOCOLS = {"tcp": 6, "udp": 17}

# How streamscope decides the client side for each kind of flow capgen writes.
CLIENT_RULE = {
    "multicast_ts_udp": "multicast",
    "multicast_ts_rtp": "multicast",
    "https": "syn",
    "small_tcp": "syn",
    "dns": "well_known_port",
    "small_dns": "well_known_port",
}

KEY = ("protocol", "client_addr", "client_port", "server_addr", "server_port", "vlan")

# The columns each client reads for the per-flow comparison; timestamps as µs integers.
FLOW_FIELDS = (
    "flow_id", "protocol", "ip_version", "client_addr", "client_port", "server_addr",
    "server_port", "vlan", "vlan_inner", "client_rule", "first_ts_us", "last_ts_us",
    "duration_us", "packets_up", "packets_down", "bytes_up", "bytes_down",
    "payload_bytes_up", "payload_bytes_down", "syn_seen", "handshake_seen",
    "handshake_rtt_us", "retransmitted_packets_up", "retransmitted_packets_down",
    "fin_up", "fin_down", "rst_seen", "end_reason", "bins",
)


def flow_label(t):
    return (
        f"truth flow {t['flow_id']} ({t['kind']} {t['protocol']} "
        f"{t['client_addr']}:{t['client_port']} -> {t['server_addr']}:{t['server_port']} "
        f"vlan {t['vlan']})"
    )


def truth_key(t):
    return (
        PROTOCOLS[t["protocol"]], t["client_addr"], t["client_port"],
        t["server_addr"], t["server_port"], t["vlan"],
    )


def membership_flows(truth):
    """The IGMP/MLD flows the truth implies: capgen lists its IGMP and MLD messages as
    `multicast_events` (one per message and group record), not as flows; each (sender,
    destination) pair of them is one of our portless flows, the destination (a multicast
    address) its client. {(destination, sender): [first message's ns, its index among the
    file's IGMP/MLD messages, messages]}"""
    messages = {}
    for e in truth["multicast_events"]:
        messages.setdefault(e["message"], e)
    flows = {}
    for m in sorted(messages):
        e = messages[m]
        f = flows.setdefault((e["dst"], e["host"]), [e["ts_ns"], m, 0])
        f[2] += 1
    return flows


def expected_ids(truth):
    """Our flow id of each truth flow: ours count flows in the order of their first
    packets, the IGMP flows among them; capgen numbers its own flows in that order (those
    starting together by id), its IGMP messages by index. An IGMP flow starting with a
    flow of the other kind would leave the order unsaid."""
    starts = sorted(
        [(t["first_ts_ns"], 0, t["flow_id"]) for t in truth["flows"]]
        + [(ts, 1, m) for ts, m, _ in membership_flows(truth).values()]
    )
    for a, b in zip(starts, starts[1:]):
        check(a[0] < b[0] or a[1] == b[1],
              lambda: f"an IGMP flow starts with another flow at {a[0]} ns")
    first = min((t["flow_id"] for t in truth["flows"]), default=0)
    return {i: first + rank for rank, (_, kind, i) in enumerate(starts) if kind == 0}


def compare_flows(client, rows, truth, run):
    """The per-flow comparison with the truth, on rows (dicts of FLOW_FIELDS) read by
    `client`. Every truth flow, and every IGMP flow its messages imply, must match exactly
    one row and no row may be left over."""
    flows = truth["flows"]
    membership = membership_flows(truth)
    eq(len(rows), len(flows) + len(membership), f"[{client}] number of flows")
    for (group, host), (first_ns, _, messages) in membership.items():
        hits = [r for r in rows if r["protocol"] == 2 and r["client_addr"] == group
                and r["server_addr"] == host]
        w = f"[{client}] IGMP messages from {host} to {group}"
        eq(len(hits), 1, f"{w}: flows")
        r = hits[0]
        eq((r["packets_up"], r["packets_down"]), (0, messages), f"{w}: packets up, down")
        eq(r["first_ts_us"], first_ns // 1000, f"{w}: first_ts (µs)")
        eq(r["client_rule"], "multicast", f"{w}: client_rule")
    ids = expected_ids(truth)
    by_key = {}
    for r in rows:
        k = tuple(r[c] for c in KEY)
        check(k not in by_key, f"[{client}] two flows share the key {k}")
        by_key[k] = r
    bin_us = run["options"]["bin_ns"] // 1000
    for t in flows:
        label = flow_label(t)
        r = by_key.get(truth_key(t))
        check(r is not None, lambda: f"[{client}] {label}: no flow row with this key")
        w = f"[{client}] {label}"
        # flow ids are assigned in order of first packet.
        eq(r["flow_id"], ids[t["flow_id"]], f"{w}: flow_id")
        eq(r["ip_version"], t["ip_version"], f"{w}: ip_version")
        eq(r["vlan_inner"], None, f"{w}: vlan_inner")
        eq(r["client_rule"], CLIENT_RULE[t["kind"]], f"{w}: client_rule")
        for d in ("up", "down"):
            eq(r[f"packets_{d}"], t[f"packets_{d}"], f"{w}: packets_{d}")
            eq(r[f"bytes_{d}"], t[f"frame_bytes_{d}"], f"{w}: bytes_{d}")
            eq(r[f"payload_bytes_{d}"], t[f"payload_bytes_{d}"], f"{w}: payload_bytes_{d}")
        first_us, last_us = t["first_ts_ns"] // 1000, t["last_ts_ns"] // 1000
        eq(r["first_ts_us"], first_us, f"{w}: first_ts (µs)")
        eq(r["last_ts_us"], last_us, f"{w}: last_ts (µs)")
        eq(r["duration_us"], last_us - first_us, f"{w}: duration_us")
        eq(r["bins"], last_us // bin_us - first_us // bin_us + 1, f"{w}: bins")
        tcp = t["tcp"]
        if tcp is None:
            for c in ("syn_seen", "handshake_seen", "handshake_rtt_us",
                      "retransmitted_packets_up", "retransmitted_packets_down",
                      "fin_up", "fin_down", "rst_seen"):
                eq(r[c], None, f"{w}: {c} of a non-TCP flow")
            # Every UDP flow of the capture is shorter than the UDP idle timeout.
            eq(r["end_reason"], "capture_end", f"{w}: end_reason")
        else:
            eq(r["syn_seen"], tcp["syn_ts_ns"] is not None, f"{w}: syn_seen")
            rtt = tcp["handshake_rtt_ns"]
            eq(r["handshake_seen"], rtt is not None, f"{w}: handshake_seen")
            eq(r["handshake_rtt_us"], None if rtt is None else rtt // 1000,
               f"{w}: handshake_rtt_us")
            eq(r["fin_up"], tcp["fin_client"], f"{w}: fin_up")
            eq(r["fin_down"], tcp["fin_server"], f"{w}: fin_down")
            eq(r["rst_seen"], tcp["rst_client"] or tcp["rst_server"], f"{w}: rst_seen")
            eq(r["retransmitted_packets_up"] + r["retransmitted_packets_down"],
               tcp["retransmissions"], f"{w}: retransmitted packets")
            eq(r["end_reason"], tcp["end_reason"], f"{w}: end_reason")


# --------------------------------------------------------------------------- pyarrow


def check_pyarrow(out, schema, run):
    tables = {}
    for spec in schema:
        name = spec["name"]
        path = os.path.join(out, f"{name}.parquet")
        check(os.path.isfile(path), f"{path} is missing")
        pf = pq.ParquetFile(path)
        md = pf.metadata
        check(md.created_by.startswith("streamscope"),
              f"{name}: created_by is {md.created_by!r}, not streamscope's")
        kv = {k.decode(): v.decode() for k, v in (md.metadata or {}).items()}
        eq(kv.get("streamscope.table"), name, f"{name}: key-value streamscope.table")
        eq(kv.get("streamscope.schema_version"), str(run["schema_version"]),
           f"{name}: key-value streamscope.schema_version")
        if name == "flow_bins":
            eq(kv.get("streamscope.bin_ns"), str(run["options"]["bin_ns"]),
               f"{name}: key-value streamscope.bin_ns")
        check(md.num_row_groups >= 1 or md.num_rows == 0, f"{name}: no row group")
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            for c in range(rg.num_columns):
                cc = rg.column(c)
                eq(cc.compression, "ZSTD",
                   f"{name}: compression of {cc.path_in_schema} in row group {g}")
        # Physical Parquet schema: no unsigned integer logical type anywhere.
        for i in range(len(pf.schema)):
            col = pf.schema.column(i)
            lt = str(col.logical_type)
            check("isSigned=false" not in lt.replace(" ", ""),
                  f"{name}.{col.name}: unsigned Parquet logical type {lt}")
            check(col.converted_type not in ("UINT_8", "UINT_16", "UINT_32", "UINT_64"),
                  f"{name}.{col.name}: unsigned converted type {col.converted_type}")
        # Arrow schema against the declaration.
        arrow = pf.schema_arrow
        eq([f.name for f in arrow], [c["name"] for c in spec["columns"]],
           f"{name}: column names and order")
        for f, c in zip(arrow, spec["columns"]):
            eq(str(f.type), c["type"], f"{name}.{f.name}: type")
            eq(f.nullable, c["nullable"], f"{name}.{f.name}: nullable")
            ty = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
            check(not pa.types.is_unsigned_integer(ty), f"{name}.{f.name}: unsigned type")
            if pa.types.is_dictionary(f.type):
                check(not pa.types.is_unsigned_integer(f.type.index_type),
                      f"{name}.{f.name}: unsigned dictionary indices")
            if pa.types.is_timestamp(ty):
                eq((ty.unit, ty.tz), ("us", "UTC"), f"{name}.{f.name}: timestamp unit, zone")
        table = pf.read()
        eq(table.num_rows, md.num_rows, f"{name}: rows read")
        for f, c in zip(table.schema, spec["columns"]):
            if not c["nullable"]:
                eq(table.column(f.name).null_count, 0, f"{name}.{f.name}: nulls in a not-null column")
        tables[name] = table
    written = [f[: -len(".parquet")] for f in os.listdir(out) if f.endswith(".parquet")]
    eq(sorted(tables), sorted(written), "tables declared by the schema against the files written")
    return tables


def as_int_us(column):
    """A timestamp[us] column as int64 microseconds."""
    return pc.cast(column, pa.int64())


def pyarrow_flow_rows(flows):
    cols = {}
    for name in FLOW_FIELDS:
        if name.endswith("_ts_us"):
            cols[name] = as_int_us(flows.column(name[: -len("_us")])).to_pylist()
        else:
            col = flows.column(name)
            if pa.types.is_dictionary(col.type):
                col = pc.cast(col, pa.string())
            cols[name] = col.to_pylist()
    return [dict(zip(cols, vals)) for vals in zip(*cols.values())]


def pandas_flow_rows(flows):
    df = flows.to_pandas()
    epoch = pd.Timestamp(0, tz="UTC")
    one_us = pd.Timedelta(microseconds=1)
    ints = {f.name for f in flows.schema if pa.types.is_integer(f.type)}
    bools = {f.name for f in flows.schema if pa.types.is_boolean(f.type)}

    def norm(name, v):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return None
        if name in ints:
            return int(v)
        if name in bools:
            return bool(v)
        return str(v)

    rows = []
    for rec in df.to_dict("records"):
        row = {}
        for name in FLOW_FIELDS:
            if name.endswith("_ts_us"):
                ts = rec[name[: -len("_us")]]
                row[name] = int((ts - epoch) // one_us)
            else:
                row[name] = norm(name, rec[name])
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- DuckDB


def sql_str(text):
    """A SQL string literal (for the statements DuckDB cannot prepare, like CREATE VIEW)."""
    return "'" + text.replace("'", "''") + "'"


def duckdb_tables(out, schema, run):
    """A DuckDB connection with a view per table (read_parquet), after checking each
    file's types, repetitions, codecs, created_by and row count as DuckDB sees them."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    paths = {s["name"]: os.path.join(out, f"{s['name']}.parquet") for s in schema}
    for spec in schema:
        name, path = spec["name"], paths[spec["name"]]
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql_str(path)})")
        described = con.execute(f"DESCRIBE {name}").fetchall()
        eq([d[0] for d in described], [c["name"] for c in spec["columns"]],
           f"[duckdb] {name}: columns")
        for (cname, ctype, *_), c in zip(described, spec["columns"]):
            eq(ctype, DUCKDB_TYPES[c["type"]], f"[duckdb] {name}.{cname}: type")
        # Leaves, and the groups of list columns (named after the column).
        reps = dict(con.execute(
            "SELECT name, repetition_type FROM parquet_schema(?) WHERE name NOT IN "
            "('list', 'item', 'element')", [path]).fetchall())
        for c in spec["columns"]:
            eq(reps.get(c["name"]), "OPTIONAL" if c["nullable"] else "REQUIRED",
               f"[duckdb] {name}.{c['name']}: repetition")
        codecs = con.execute(
            "SELECT DISTINCT compression FROM parquet_metadata(?)", [path]).fetchall()
        # A table without rows has no column chunk, hence no codec to read.
        rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        want_codecs = ["ZSTD"] if rows else []
        eq(sorted(x[0] for x in codecs), want_codecs, f"[duckdb] {name}: compression codecs")
        created = con.execute(
            "SELECT DISTINCT created_by FROM parquet_file_metadata(?)", [path]).fetchall()
        check(len(created) == 1 and created[0][0].startswith("streamscope"),
              f"[duckdb] {name}: created_by {created}")
        eq(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0],
           next(t["rows"] for t in run["tables"] if t["name"] == name),
           f"[duckdb] {name}: rows vs run.json tables[].rows")
    return con, paths


def check_duckdb(out, schema, truth, run):
    con, paths = duckdb_tables(out, schema, run)

    # Per-flow comparison: read the flows table with SQL, timestamps as epoch µs.
    select = ", ".join(
        f"epoch_us({n[:-3]}) AS {n}" if n.endswith("_ts_us") else n for n in FLOW_FIELDS
    )
    cur = con.execute(f"SELECT {select} FROM flows")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    compare_flows("duckdb", rows, truth, run)

    # The same key join done in SQL: every truth flow finds its row, equal on all counters.
    tf = truth["flows"]
    # Handed to DuckDB as an Arrow table (a million truth flows in a second or two; row by
    # row through executemany they took minutes).
    truth_schema = pa.schema([
        ("flow_id", pa.int64()), ("protocol", pa.int32()), ("client_addr", pa.string()),
        ("client_port", pa.int32()), ("server_addr", pa.string()),
        ("server_port", pa.int32()), ("vlan", pa.int32()), ("first_ns", pa.int64()),
        ("last_ns", pa.int64()), ("packets_up", pa.int64()), ("packets_down", pa.int64()),
        ("bytes_up", pa.int64()), ("bytes_down", pa.int64()), ("payload_up", pa.int64()),
        ("payload_down", pa.int64()), ("rtt_ns", pa.int64()), ("fin_client", pa.bool_()),
        ("fin_server", pa.bool_()), ("rst", pa.bool_()),
    ])
    truth_rows = [
        [
            t["flow_id"], *truth_key(t), t["first_ts_ns"], t["last_ts_ns"],
            t["packets_up"], t["packets_down"], t["frame_bytes_up"],
            t["frame_bytes_down"], t["payload_bytes_up"], t["payload_bytes_down"],
            t["tcp"]["handshake_rtt_ns"] if t["tcp"] else None,
            t["tcp"]["fin_client"] if t["tcp"] else None,
            t["tcp"]["fin_server"] if t["tcp"] else None,
            (t["tcp"]["rst_client"] or t["tcp"]["rst_server"]) if t["tcp"] else None,
        ]
        for t in tf
    ]
    truth_columns = list(zip(*truth_rows)) or [[] for _ in truth_schema]
    truth_table = pa.Table.from_arrays(
        [pa.array(list(col), type=f.type) for col, f in zip(truth_columns, truth_schema)],
        schema=truth_schema,
    )
    con.register("truth", truth_table)
    eq(con.execute("SELECT count(*) FROM truth").fetchone()[0], len(tf),
       "[duckdb] truth flows registered")
    bad = con.execute(
        """
        SELECT t.flow_id, f.flow_id
        FROM truth t LEFT JOIN flows f
          ON f.protocol = t.protocol AND f.client_addr = t.client_addr
         AND f.client_port IS NOT DISTINCT FROM t.client_port
         AND f.server_addr = t.server_addr
         AND f.server_port IS NOT DISTINCT FROM t.server_port
         AND f.vlan IS NOT DISTINCT FROM t.vlan
        WHERE f.flow_id IS NULL
           OR f.packets_up <> t.packets_up OR f.packets_down <> t.packets_down
           OR f.bytes_up <> t.bytes_up OR f.bytes_down <> t.bytes_down
           OR f.payload_bytes_up <> t.payload_up OR f.payload_bytes_down <> t.payload_down
           OR epoch_us(f.first_ts) <> t.first_ns // 1000
           OR epoch_us(f.last_ts) <> t.last_ns // 1000
           OR f.handshake_rtt_us IS DISTINCT FROM t.rtt_ns // 1000
           OR f.fin_up IS DISTINCT FROM t.fin_client
           OR f.fin_down IS DISTINCT FROM t.fin_server
           OR f.rst_seen IS DISTINCT FROM t.rst
        ORDER BY t.flow_id
        """
    ).fetchall()
    eq(bad, [], "[duckdb] truth flows without an equal flows row (truth id, our id)")

    # flow_bins: totals per flow equal the flows table.
    diff = con.execute(
        """
        WITH b AS (
          SELECT flow_id, sum(packets_up) AS pu, sum(packets_down) AS pd,
                 sum(bytes_up) AS bu, sum(bytes_down) AS bd, count(*) AS n,
                 min(bin_start) AS lo, max(bin_start) AS hi,
                 max(bitrate_down_bps) AS maxbps
          FROM flow_bins GROUP BY flow_id)
        SELECT f.flow_id, f.packets_up, b.pu, f.packets_down, b.pd, f.bytes_up, b.bu,
               f.bytes_down, b.bd
        FROM flows f FULL OUTER JOIN b USING (flow_id)
        WHERE b.flow_id IS NULL OR f.flow_id IS NULL
           OR f.packets_up <> b.pu OR f.packets_down <> b.pd
           OR f.bytes_up <> b.bu OR f.bytes_down <> b.bd
           OR b.n > f.bins
        ORDER BY 1
        """
    ).fetchall()
    eq(diff, [], "[duckdb] flows whose flow_bins totals differ "
                 "(id, packets_up ours/bins, packets_down, bytes_up, bytes_down)")

    bin_us = run["options"]["bin_ns"] // 1000
    # Bins are aligned, lie within the flow's span, hold traffic, and their bitrate is
    # bytes_down * 8 / width, floored.
    bad_bins = con.execute(
        f"""
        SELECT b.flow_id, epoch_us(b.bin_start), b.bytes_down, b.bitrate_down_bps
        FROM flow_bins b JOIN flows f USING (flow_id)
        WHERE epoch_us(b.bin_start) % {bin_us} <> 0
           OR epoch_us(b.bin_start) < epoch_us(f.first_ts) // {bin_us} * {bin_us}
           OR epoch_us(b.bin_start) > epoch_us(f.last_ts)
           OR b.packets_up + b.packets_down = 0
           OR b.bitrate_down_bps <> b.bytes_down * 8 * 1000000 // {bin_us}
        ORDER BY 1, 2
        """
    ).fetchall()
    eq(bad_bins, [], "[duckdb] misaligned, out-of-span, empty or mis-rated bins "
                     "(flow, bin_start µs, bytes_down, bitrate_down_bps)")

    # flow_bins is sorted by (bin_start, flow_id) in file order, and a (flow, bin) is unique.
    unsorted = con.execute(
        """
        SELECT file_row_number, flow_id, epoch_us(bin_start) FROM (
          SELECT file_row_number, flow_id, bin_start,
                 lag(bin_start) OVER w AS pb, lag(flow_id) OVER w AS pf
          FROM read_parquet(?, file_row_number = true)
          WINDOW w AS (ORDER BY file_row_number))
        WHERE pb IS NOT NULL AND (bin_start < pb OR (bin_start = pb AND flow_id <= pf))
        LIMIT 5
        """,
        [paths["flow_bins"]],
    ).fetchall()
    eq(unsorted, [], "[duckdb] flow_bins rows out of (bin_start, flow_id) order "
                     "(row, flow, bin_start µs)")

    # flows: ids unique; each summary bitrate is consistent with the flow's bins.
    eq(con.execute("SELECT count(*) - count(DISTINCT flow_id) FROM flows").fetchone()[0], 0,
       "[duckdb] duplicate flow ids")
    pct = con.execute(
        """
        SELECT f.flow_id, f.bitrate_down_max_bps, max(b.bitrate_down_bps)
        FROM flows f JOIN flow_bins b USING (flow_id)
        GROUP BY f.flow_id, f.bitrate_down_max_bps
        HAVING f.bitrate_down_max_bps IS DISTINCT FROM max(b.bitrate_down_bps)
        """
    ).fetchall()
    eq(pct, [], "[duckdb] bitrate_down_max_bps differs from the max over the flow's bins "
                "(flow, ours, bins)")
    check_percentiles(con)

    # Totals: every demo packet is IP, so the flows account for every byte of run.json.
    counts = run["counts"]
    totals = truth["totals"]
    eq(counts["non_ip_packets"], 0, "run.json counts.non_ip_packets")
    eq(counts["decode_errors"], {}, "run.json counts.decode_errors")
    eq(counts["packets"], totals["packets"], "run.json counts.packets vs truth")
    eq(counts["bytes"], totals["frame_bytes"], "run.json counts.bytes vs truth")
    membership = membership_flows(truth)
    eq(counts["flows"], totals["flows"] + len(membership), "run.json counts.flows vs truth")
    p, b = con.execute(
        "SELECT sum(packets_up + packets_down), sum(bytes_up + bytes_down) FROM flows"
    ).fetchone()
    eq(p, counts["packets"] - counts["non_ip_packets"], "[duckdb] sum of flow packets")
    eq(b, counts["bytes"], "[duckdb] sum of flow bytes vs run.json counts.bytes")
    eq(b, totals["frame_bytes"], "[duckdb] sum of flow bytes vs truth frame_bytes")
    by_proto = dict(con.execute(
        "SELECT protocol, sum(packets_up + packets_down) FROM flows GROUP BY protocol"
    ).fetchall())
    igmp = sum(n for _, _, n in membership.values())
    eq(by_proto, {6: totals["tcp_packets"], 17: totals["udp_packets"], 2: igmp},
       "[duckdb] packets per protocol vs truth tcp_packets/udp_packets/IGMP messages")
    by_ver = dict(con.execute(
        "SELECT ip_version, sum(packets_up + packets_down) FROM flows GROUP BY ip_version"
    ).fetchall())
    eq(by_ver, {4: totals["ipv4_packets"], 6: totals["ipv6_packets"]},
       "[duckdb] packets per IP version vs truth")
    eq(con.execute(
        "SELECT sum(packets_up + packets_down) FROM flows WHERE vlan IS NOT NULL"
    ).fetchone()[0], totals["vlan_packets"], "[duckdb] VLAN-tagged packets vs truth")
    span = con.execute("SELECT epoch_us(min(first_ts)), epoch_us(max(last_ts)) FROM flows"
                       ).fetchone()
    eq(span, (totals["first_ts_ns"] // 1000, totals["last_ts_ns"] // 1000),
       "[duckdb] time span of the flows vs truth")

    # A bitrate-per-second series, as a dashboard would query it (without the IGMP
    # flows: the truth gives their messages, not their bytes).
    series = con.execute(
        """
        SELECT time_bucket(INTERVAL 1 second, bin_start) AS second,
               sum(bytes_down) * 8 AS bits_down, sum(bytes_up) * 8 AS bits_up
        FROM flow_bins
        WHERE flow_id NOT IN (SELECT flow_id FROM flows WHERE protocol = 2)
        GROUP BY second ORDER BY second
        """
    ).fetchall()
    truth_down = sum(t["frame_bytes_down"] for t in truth["flows"])
    truth_up = sum(t["frame_bytes_up"] for t in truth["flows"])
    eq(sum(s[1] for s in series), truth_down * 8, "[duckdb] downstream bits per second, total")
    eq(sum(s[2] for s in series), truth_up * 8, "[duckdb] upstream bits per second, total")
    first_s = totals["first_ts_ns"] // 10**9
    last_s = totals["last_ts_ns"] // 10**9
    eq(len(series), last_s - first_s + 1, "[duckdb] seconds in the bitrate series")
    # Multicast channels are all downstream (the head-end is the server): their
    # per-second bytes sum to the channels' frame bytes.
    mc = con.execute(
        "SELECT sum(b.bytes_down) FROM flow_bins b JOIN flows f USING (flow_id) "
        "WHERE f.client_rule = 'multicast' AND f.protocol = 17"
    ).fetchone()[0]
    eq(mc, sum(t["frame_bytes_down"] for t in truth["flows"] if t["kind"].startswith("multicast")),
       "[duckdb] multicast bytes over flow_bins vs truth")
    return len(rows)


def check_percentiles(con):
    """p50/p95 over the bins a flow spans (empty bins count as 0), nearest rank: exact
    while at most EXACT_LIMIT bins carry downstream bytes, within 1 % past that (plus
    1 bit/s, the rounding down of bit/s), where streamscope keeps a histogram instead."""
    bin_bps = {}
    down_bins = {}
    for fid, bps, down in con.execute(
        "SELECT flow_id, bitrate_down_bps, bytes_down FROM flow_bins"
    ).fetchall():
        bin_bps.setdefault(fid, []).append(bps)
        down_bins[fid] = down_bins.get(fid, 0) + (down > 0)
    for fid, bins, p50, p95 in con.execute(
        "SELECT flow_id, bins, bitrate_down_p50_bps, bitrate_down_p95_bps FROM flows"
    ).fetchall():
        with_traffic = bin_bps.get(fid, [])
        values = sorted(with_traffic + [0] * (bins - len(with_traffic)))
        exact = down_bins.get(fid, 0) <= EXACT_LIMIT
        for p, ours in ((50, p50), (95, p95)):
            rank = max(1, math.ceil(p / 100 * len(values)))
            want = values[rank - 1]
            what = (f"[duckdb] flow {fid}: bitrate_down_p{p}_bps (nearest rank over "
                    f"{len(values)} bins, {down_bins.get(fid, 0)} with bytes down)")
            if exact:
                eq(ours, want, what)
            else:
                check(ours is not None and abs(ours - want) * 100 <= want + 100,
                      lambda: f"{what}: streamscope has {ours!r}, expected {want!r} "
                              f"within 1 %")


# --------------------------------------------------------------------------- OTT columns

# The http.role of each kind of request a truth lists (testbed http_log kinds, capgen
# request kinds).
ROLE_OF_KIND = {
    "master_playlist": "playlist", "media_playlist": "playlist",
    "init_segment": "segment", "segment": "segment",
    "panel_api": "panel_api", "player_api": "panel_api",
    "progressive_ts": "panel_stream", "live_stream": "panel_stream",
}

# The columns compared across clients, per flow.
OTT_FIELDS = ("flow_id", "protocol", "client_addr", "sni", "alpn", "tls_version",
              "quic_version", "tls_offered_versions", "http_host", "service",
              "service_source", "class")

QUIC_VERSIONS = {1: "v1", 0x6b3343cf: "v2"}


def ott_expectations(truth):
    """What a truth (testbed or capgen) says the HTTP, TLS and QUIC columns hold.

    http: the requests in clear (testbed: scheme http; capgen: every HLS and panel
    request), as roles, hosts and statuses, with their request times in µs when exact
    (capgen); tls: (SNI, ALPN or None when the truth does not say) per TLS-over-TCP
    connection; quic: (SNI, ALPN, version name) per QUIC connection; groups: the multicast
    groups sent."""
    e = {"roles": {}, "hosts": set(), "statuses": {}, "request_us": None,
         "segments": 0, "tls": [], "quic": [], "groups": set()}

    def request(kind, host, status):
        role = ROLE_OF_KIND[kind]
        e["roles"][role] = e["roles"].get(role, 0) + 1
        e["statuses"][status] = e["statuses"].get(status, 0) + 1
        e["hosts"].add(host)
        e["segments"] += kind == "segment"

    if truth.get("generator") == "testbed":
        for r in truth["http_log"]:
            if r["scheme"] == "http":
                request(r["kind"], r["host"], r["status"])
        for sni, n in truth["summary"]["tls_connections_by_sni"].items():
            e["tls"] += [(sni, None)] * n
        e["groups"] = {s["group"] for s in truth["streams"]}
    else:
        e["request_us"] = []
        for f in truth["flows"]:
            if f.get("http"):
                for r in f["http"]["requests"]:
                    request(r["kind"], f["http"]["host"], r["status"])
                    e["request_us"].append(r["request_ts_ns"] // 1000)
            if f.get("tls"):
                e["tls"].append((f["tls"]["sni"], f["tls"]["alpn"]))
            if f.get("quic"):
                q = f["quic"]
                e["quic"].append((q["sni"], q["alpn"],
                                  QUIC_VERSIONS.get(q["version"], str(q["version"]))))
            if f["kind"].startswith("multicast"):
                e["groups"].add(f["client_addr"])
        e["request_us"].sort()
    return e


def is_utc(ts):
    """A timestamp read by a client is timezone-aware and in UTC."""
    return ts is not None and ts.tzinfo is not None and ts.utcoffset() == timedelta(0)


def check_ott_pyarrow(tables, e, covered):
    """The HTTP, TLS and QUIC columns read through pyarrow: values of the declared kinds
    (lists as Python lists, dictionaries as decoded strings, timestamps as UTC
    datetimes), equal to the truth's."""
    http, flows, segs = tables["http"], tables["flows"], tables["segments"]
    for t, c in (("http", "role"), ("http", "path_template"), ("http", "host"),
                 ("flows", "sni"), ("flows", "class"), ("flows", "service"),
                 ("flows", "tls_version"), ("flows", "quic_version"),
                 ("flows", "http_host"), ("segments", "method")):
        check(pa.types.is_dictionary(tables[t].schema.field(c).type),
              f"[pyarrow] {t}.{c} is not dictionary-encoded")
    for t, c in (("flows", "alpn"), ("flows", "tls_offered_versions")):
        ty = tables[t].schema.field(c).type
        check(pa.types.is_list(ty) and ty.value_type == pa.string(),
              f"[pyarrow] {t}.{c}: {ty} is not a list of strings")

    # http: one row per request in clear, with its role, template, host and status.
    rows = http.to_pylist()
    n = sum(e["roles"].values())
    eq(len(rows), n, "[pyarrow] http rows vs the truth's requests in clear")
    roles, statuses = {}, {}
    for r in rows:
        w = f"[pyarrow] http row of flow {r['flow_id']}"
        for c in ("role", "path_template", "host", "method", "pairing"):
            check(isinstance(r[c], str), f"{w}: {c} {r[c]!r} is not a decoded string")
        check(r["path_template"].startswith("/"), f"{w}: path_template {r['path_template']!r}")
        eq(r["pairing"], "answered", f"{w}: pairing")
        for c in ("request_ts", "response_ts", "response_end_ts"):
            check(is_utc(r[c]), f"{w}: {c} {r[c]!r} is not a UTC timestamp")
        if r["role"] == "panel_stream":
            check("{cred}" in r["path_template"],
                  f"{w}: panel stream template {r['path_template']!r} without {{cred}}")
        if r["role"] == "panel_api":
            check({"username", "password"} <= set((r["query_names"] or "").split("&")),
                  f"{w}: panel API query names {r['query_names']!r}")
        roles[r["role"]] = roles.get(r["role"], 0) + 1
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    eq(roles, e["roles"], "[pyarrow] http rows per role vs the truth's request kinds")
    eq(statuses, e["statuses"], "[pyarrow] http rows per status vs the truth")
    eq({r["host"] for r in rows}, e["hosts"], "[pyarrow] http hosts vs the truth")
    if e["request_us"] is not None:
        eq(sorted(as_int_us(http.column("request_ts")).to_pylist()), e["request_us"],
           "[pyarrow] http request_ts (µs) vs the truth's request times")
    if rows:
        covered.update({"http", "role", "path_template", "status"})

    # flows: TLS, QUIC and HTTP facts, class and service.
    frows = flows.to_pylist()
    for r in frows:
        w = f"[pyarrow] flow {r['flow_id']}"
        for c in ("class", "service", "service_source"):
            check(isinstance(r[c], str) and r[c], f"{w}: {c} {r[c]!r}")
        for c in ("first_ts", "last_ts"):
            check(is_utc(r[c]), f"{w}: {c} {r[c]!r} is not a UTC timestamp")
        for c in ("alpn", "tls_offered_versions"):
            check(r[c] is None or (isinstance(r[c], list) and r[c]
                                   and all(isinstance(x, str) for x in r[c])),
                  f"{w}: {c} {r[c]!r} is not a list of strings")
    tls = [r for r in frows if r["protocol"] == 6 and r["sni"] is not None]
    quic = [r for r in frows if r["quic_version"] is not None]
    eq(sorted(r["sni"] for r in tls), sorted(s for s, _ in e["tls"]),
       "[pyarrow] SNIs of TLS-over-TCP flows vs the truth's TLS connections")
    want_alpn = {s: a for s, a in e["tls"] if a is not None}
    for r in tls:
        w = f"[pyarrow] TLS flow {r['flow_id']} ({r['sni']})"
        check(r["alpn"], f"{w}: no ALPN")
        if r["sni"] in want_alpn:
            eq(r["alpn"], want_alpn[r["sni"]], f"{w}: alpn")
        check(r["tls_version"] in ("TLS 1.2", "TLS 1.3"), f"{w}: tls_version {r['tls_version']!r}")
        check(r["tls_offered_versions"] and r["tls_version"] in r["tls_offered_versions"],
              f"{w}: tls_version {r['tls_version']!r} not among the offered "
              f"{r['tls_offered_versions']!r}")
        eq(r["service_source"], "sni", f"{w}: service_source")
        check(r["service"] and r["sni"].endswith(r["service"]), f"{w}: service {r['service']!r}")
        check(r["class"] in ("tls_streaming", "tls_other"), f"{w}: class {r['class']!r}")
        eq(r["quic_version"], None, f"{w}: quic_version")
    eq(sorted((r["sni"], r["alpn"], r["quic_version"]) for r in quic), sorted(e["quic"]),
       "[pyarrow] QUIC flows (sni, alpn, quic_version) vs the truth")
    for r in quic:
        w = f"[pyarrow] QUIC flow {r['flow_id']} ({r['sni']})"
        eq(r["protocol"], 17, f"{w}: protocol")
        eq(r["tls_version"], "TLS 1.3", f"{w}: tls_version")
        check(r["class"] in ("quic_streaming", "quic_other"), f"{w}: class {r['class']!r}")
        eq(r["service_source"], "sni", f"{w}: service_source")
    for r in frows:
        if r["sni"] is None:
            for c in ("alpn", "tls_version", "tls_offered_versions", "quic_version"):
                eq(r[c], None, f"[pyarrow] flow {r['flow_id']} without a ClientHello: {c}")
    hosts = {r["http_host"] for r in frows if r["http_host"] is not None}
    eq(hosts, e["hosts"], "[pyarrow] flows.http_host vs the truth's hosts in clear")
    for r in frows:
        if r["http_host"] is not None and r["sni"] is None:
            eq(r["service_source"], "http_host", f"[pyarrow] flow {r['flow_id']}: service_source")
    http_flows = {r["flow_id"] for r in frows if r["http_host"] is not None}
    eq({r["flow_id"] for r in rows}, http_flows, "[pyarrow] flows of the http rows vs "
       "the flows with an http_host")
    for g in e["groups"]:
        to_g = [r for r in frows if r["client_addr"] == g]
        check(any(r["class"] == "iptv_multicast" for r in to_g),
              f"[pyarrow] no iptv_multicast flow to the group {g}")
        for r in to_g:
            eq((r["service"], r["service_source"]), (g, "group"),
               f"[pyarrow] flow {r['flow_id']} to {g}: service, service_source")
    if tls:
        covered.update({"sni", "alpn", "tls_version"})
    if quic:
        covered.add("quic_version")
    if hosts:
        covered.add("http_host")
    if e["groups"]:
        covered.add("multicast")
    covered.update({"service", "class"})

    # segments: one http row per segment in clear, inferred ones on TLS / QUIC flows.
    srows = segs.to_pylist()
    methods = {}
    # Inferred segments belong on TLS or QUIC flows (a TLS flow picked up after its
    # ClientHello has records but no SNI).
    encrypted = {r["flow_id"] for r in frows if r["class"].startswith(("tls_", "quic_"))}
    for r in srows:
        check(r["method"] in ("http", "inferred"), f"[pyarrow] segments.method {r['method']!r}")
        methods[r["method"]] = methods.get(r["method"], 0) + 1
        for c in ("request_ts", "first_byte_ts", "last_byte_ts"):
            check(is_utc(r[c]), f"[pyarrow] segment of flow {r['flow_id']}: {c} {r[c]!r}")
        want = http_flows if r["method"] == "http" else encrypted
        check(r["flow_id"] in want,
              f"[pyarrow] {r['method']} segment on flow {r['flow_id']}, not an "
              f"{'HTTP' if r['method'] == 'http' else 'encrypted'} flow")
    eq(methods.get("http", 0), e["segments"],
       "[pyarrow] http segments vs the truth's segment requests in clear")
    if e["tls"] or e["quic"]:
        check(methods.get("inferred", 0) > 0, "[pyarrow] no inferred segment")
    if methods.get("http"):
        covered.add("segments_http")
    if methods.get("inferred"):
        covered.add("segments_inferred")
    return frows


def check_ott_duckdb(con, tables, e, frows):
    """The same columns through DuckDB: its types (VARCHAR[] lists, VARCHAR for
    dictionaries, TIMESTAMP WITH TIME ZONE), values equal to pyarrow's, and the SQL a
    user would write on them."""
    # typeof on values (DESCRIBE, checked already, reads the schema only).
    for t, c, want in (("flows", "alpn", "VARCHAR[]"), ("flows", "sni", "VARCHAR"),
                       ("http", "role", "VARCHAR"),
                       ("http", "request_ts", "TIMESTAMP WITH TIME ZONE"),
                       ("segments", "method", "VARCHAR")):
        for (ty,) in con.execute(
                f"SELECT DISTINCT typeof({c}) FROM {t} WHERE {c} IS NOT NULL").fetchall():
            eq(ty, want, f"[duckdb] typeof({t}.{c})")
    cur = con.execute(f"SELECT {', '.join(OTT_FIELDS)} FROM flows ORDER BY flow_id")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    for r in rows:
        for c in ("alpn", "tls_offered_versions"):
            check(r[c] is None or isinstance(r[c], list),
                  f"[duckdb] flow {r['flow_id']}: {c} {r[c]!r} is not a list")
    want = sorted(({k: r[k] for k in OTT_FIELDS} for r in frows), key=lambda r: r["flow_id"])
    eq(rows, want, "[duckdb] flows' OTT columns vs pyarrow's")
    eq(dict(con.execute("SELECT role, count(*) FROM http GROUP BY role").fetchall()),
       e["roles"], "[duckdb] http rows per role")
    eq(dict(con.execute("SELECT status, count(*) FROM http GROUP BY status").fetchall()),
       e["statuses"], "[duckdb] http rows per status")
    eq(con.execute("SELECT count(*) FROM http WHERE path_template IS NULL OR "
                   "NOT starts_with(path_template, '/')").fetchone()[0], 0,
       "[duckdb] http rows without a path template")
    eq(sorted(x[0] for x in con.execute("SELECT epoch_us(request_ts) FROM http").fetchall()),
       sorted(as_int_us(tables["http"].column("request_ts")).to_pylist()),
       "[duckdb] http request_ts (µs) vs pyarrow's")
    for ts in con.execute("SELECT request_ts FROM http LIMIT 3").fetchall():
        check(is_utc(ts[0]), f"[duckdb] http.request_ts {ts[0]!r} is not a UTC timestamp")
    # The hosts the HTTP transactions name are their flows' http_host.
    eq(con.execute("SELECT count(*) FROM http h JOIN flows f USING (flow_id) "
                   "WHERE h.host IS DISTINCT FROM f.http_host").fetchone()[0], 0,
       "[duckdb] http rows whose host is not their flow's http_host")
    h3 = sum(1 for _, a, _ in e["quic"] if "h3" in a)
    eq(con.execute("SELECT count(*) FROM flows WHERE list_contains(alpn, 'h3') "
                   "AND quic_version IS NOT NULL").fetchone()[0], h3,
       "[duckdb] QUIC flows offering h3 (list_contains on alpn)")
    eq(sorted(x[0] for x in con.execute(
        "SELECT DISTINCT unnest(alpn) FROM flows").fetchall()),
       sorted({a for r in frows for a in (r["alpn"] or [])}),
       "[duckdb] ALPN protocols (unnest) vs pyarrow's")
    methods = dict(con.execute(
        "SELECT method, count(*) FROM segments GROUP BY method").fetchall())
    eq(methods.get("http", 0), e["segments"], "[duckdb] http segments")
    eq(con.execute(
        "SELECT count(*) FROM segments s JOIN flows f USING (flow_id) WHERE "
        "s.method = 'inferred' AND NOT (starts_with(f.class, 'tls_') "
        "OR starts_with(f.class, 'quic_'))").fetchone()[0], 0,
       "[duckdb] inferred segments on flows neither TLS nor QUIC")


def check_ott_pandas(flows, frows):
    """flows through pandas: dictionaries as categoricals, lists as sequences of
    strings, timestamps in UTC, values equal to pyarrow's."""
    df = flows.to_pandas()
    for c in ("class", "service", "sni", "tls_version", "quic_version", "http_host"):
        eq(str(df[c].dtype), "category", f"[pandas] flows.{c} dtype")
    for c in ("first_ts", "last_ts"):
        check(str(getattr(df[c].dtype, "tz", None)) == "UTC",
              f"[pandas] flows.{c} dtype {df[c].dtype} is not in UTC")

    def norm(v):
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        if hasattr(v, "tolist"):
            v = v.tolist()
        if isinstance(v, list):
            check(all(isinstance(x, str) for x in v), f"[pandas] list item types in {v!r}")
            return v
        return v if isinstance(v, str) else int(v)

    rows = [{k: norm(rec[k]) for k in OTT_FIELDS} for rec in df.to_dict("records")]
    eq(rows, [{k: r[k] for k in OTT_FIELDS} for r in frows], "[pandas] flows' OTT columns")


def check_ott(out, truth, schema, run):
    """`--ott`: the tables read as declared by pyarrow and DuckDB, and the HTTP, TLS and
    QUIC columns equal to what the truth says; returns the features seen non-empty."""
    covered = set()
    tables = check_pyarrow(out, schema, run)
    e = ott_expectations(truth)
    frows = check_ott_pyarrow(tables, e, covered)
    con, _ = duckdb_tables(out, schema, run)
    check_ott_duckdb(con, tables, e, frows)
    clients = "pyarrow, duckdb"
    if pd is not None:
        check_ott_pandas(tables["flows"], frows)
        clients += ", pandas"
    return covered, clients, len(frows)


# --------------------------------------------------------------------------- main


def main(argv):
    ott = len(argv) > 1 and argv[1] == "--ott"
    if ott:
        argv = argv[:1] + argv[2:]
    if len(argv) != 4:
        print("usage: check_tables.py [--ott] OUT TRUTH_JSON SCHEMA_JSON", file=sys.stderr)
        return 2
    out, truth_path, schema_path = argv[1:]
    with open(truth_path) as f:
        truth = json.load(f)
    with open(schema_path) as f:
        schema = json.load(f)
    with open(os.path.join(out, "run.json")) as f:
        run = json.load(f)
    covered = None
    try:
        check(isinstance(schema, list) and schema, "schema JSON is not a non-empty array")
        check(run["schema_version"] >= 1, "run.json schema_version")
        if ott:
            covered, clients, n = check_ott(out, truth, schema, run)
        else:
            check(truth.get("flows") is not None, "the truth has no per-flow records")
            tables = check_pyarrow(out, schema, run)
            compare_flows("pyarrow", pyarrow_flow_rows(tables["flows"]), truth, run)
            n = check_duckdb(out, schema, truth, run)
            clients = "pyarrow, duckdb"
            if pd is not None:
                compare_flows("pandas", pandas_flow_rows(tables["flows"]), truth, run)
                clients += ", pandas"
    except Mismatch as e:
        print(f"check_tables: MISMATCH: {e}", file=sys.stderr)
        print(f"check_tables: {PASSED} checks passed before the mismatch", file=sys.stderr)
        return 1
    if covered is not None:
        print(f"check_tables: non-empty: {', '.join(sorted(covered))}")
    print(f"check_tables: {PASSED} checks passed ({n} flows, clients: {clients}; "
          f"pyarrow {pa.__version__}, duckdb {duckdb.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
