# Parses a Suricata rules file with suricata-update's rule parser
# (Debian package suricata-update) and prints one JSON object per rule:
# what the Go test checks. Exits 1 if a non-comment line is not a rule.
import json
import sys

import suricata.update.rule as rule

n = 0
with open(sys.argv[1]) as f:
    for lineno, line in enumerate(f, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        r = rule.parse(line)
        if r is None:
            print("line %d is not a rule: %s" % (lineno, line[:200]), file=sys.stderr)
            sys.exit(1)
        n += 1
        out = {k: r.get(k) for k in ("enabled", "action", "proto", "source_addr", "source_port",
                                      "direction", "dest_addr", "dest_port", "sid", "rev", "msg", "metadata")}
        for opt in ("content", "dataset", "filemd5", "filesha1", "filesha256"):
            if opt in r:
                out[opt] = r[opt]
        print(json.dumps(out))
