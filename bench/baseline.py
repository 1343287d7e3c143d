#!/usr/bin/python3
"""The Python baseline: what a data team would write to sum customs value per gate.

Reads a topic of Confluent-framed Avro declarations from the beginning with
Debian's python3-confluent-kafka (librdkafka underneath) and decodes each
message with Debian's python3-avro (the Apache Avro reference implementation),
summing items' customs value per gate. No windows, no ledger, no validation:
it does less than declstream, so the ratio declstream / Python is a lower
bound of the work-for-work ratio.

Run it with /usr/bin/python3 (Debian's packages import only there):

    /usr/bin/python3 bench/baseline.py -b SERVERS [--topic T] [--max-messages N] [--json]

--max-messages stops after N messages (its rate is steady, so a prefix gives
the rate in less time). Prints a JSON line:
{"messages","decoded","errors","seconds","messages_per_s","gates":{code: cents}}.
The clock starts when the first message arrives (group/assignment set-up is
not counted, as for kcat and declstream's "active" figure).
"""
import argparse
import io
import json
import os
import struct
import sys
import time

import avro.io
import avro.schema
from confluent_kafka import Consumer, KafkaError, TopicPartition

HERE = os.path.dirname(os.path.abspath(__file__))


def load_schemas(schema_dir):
    readers = {}
    with open(os.path.join(schema_dir, "registry.properties")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            sid, path = (x.strip() for x in line.split("=", 1))
            with open(os.path.join(schema_dir, path)) as s:
                schema = avro.schema.parse(s.read())
            readers[int(sid)] = avro.io.DatumReader(schema)
    return readers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-b", "--brokers", required=True)
    ap.add_argument("--topic", default="customs.declarations")
    ap.add_argument("--schema-dir", default=os.path.join(HERE, "..", "schemas"))
    ap.add_argument("--max-messages", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    readers = load_schemas(a.schema_dir)
    c = Consumer({
        "bootstrap.servers": a.brokers,
        "group.id": "bench-python-baseline",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        # librdkafka 2.0.2 backs off 1 s when the prefetch queue is full (FACTS.md)
        "queued.min.messages": 1000000,
        "queued.max.messages.kbytes": 2000000,
    })
    md = c.list_topics(a.topic, timeout=10)
    parts = list(md.topics[a.topic].partitions.keys())
    c.assign([TopicPartition(a.topic, p, 0) for p in parts])  # from offset 0, no group join
    remaining = set(parts)
    sums = {}
    n = decoded = errors = 0
    t0 = None
    while remaining:
        msgs = c.consume(num_messages=10000, timeout=1.0)
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(m.partition())
                    continue
                raise SystemExit("baseline: %s" % m.error())
            if t0 is None:
                t0 = time.monotonic()
            n += 1
            v = m.value()
            try:
                if not v or v[0] != 0:
                    raise ValueError("not Confluent-framed")
                sid = struct.unpack(">I", v[1:5])[0]
                rec = readers[sid].read(avro.io.BinaryDecoder(io.BytesIO(v[5:])))
                gate = rec["gate_code"]
                sums[gate] = sums.get(gate, 0) + sum(i["customs_value_usd_cents"] for i in rec["items"])
                decoded += 1
            except Exception:
                errors += 1
            if a.max_messages and n >= a.max_messages:
                remaining.clear()
                break
    secs = time.monotonic() - t0 if t0 is not None else 0.0
    c.close()
    out = {"messages": n, "decoded": decoded, "errors": errors, "seconds": round(secs, 3),
           "messages_per_s": round(n / secs, 1) if secs > 0 else 0, "gates": sums}
    if a.json:
        print(json.dumps(out))
    else:
        print("%d messages in %.2f s: %.0f msg/s" % (n, secs, out["messages_per_s"]))
        for g, v in sorted(sums.items(), key=lambda x: -x[1]):
            print("  %-12s %18.2f USD" % (g, v / 100.0))


if __name__ == "__main__":
    main()
