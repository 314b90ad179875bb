"""Parses Prometheus text exposition (format 0.0.4) with the Prometheus
client library's own parser and prints the samples as JSON lines:
{"name": ..., "labels": {...}, "value": ...}. Used by spec/metrics_spec.lua.
    /usr/bin/python3 spec/support/prom_parse.py < metrics.txt
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "name": sample.name,
                          "labels": sample.labels, "value": sample.value}))
