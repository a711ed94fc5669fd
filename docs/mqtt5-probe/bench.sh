#!/bin/bash
# Throughput, aedes 1.2.0 vs 2.0.0-beta.1, MQTT 3.1.1 clients; broker and clients in separate processes.
# usage: probe/bench.sh [runs]   -> bench-results.jsonl
cd "$(dirname "$0")/.."
RUNS=${1:-5}
: > bench-results.jsonl
for pers in memory level; do
  for qos in 0 1; do
    for run in $(seq 1 $RUNS); do
      for v in 1 2; do   # alternate versions within a run so drift hits both
        n=$([ $qos = 0 ] && echo 100000 || echo 15000)
        node probe/bench-broker.mjs $v $pers > /tmp/bench-broker.$$ 2>&1 &
        bp=$!
        for i in $(seq 50); do grep -q PORT /tmp/bench-broker.$$ && break; sleep 0.1; done
        port=$(awk '/PORT/{print $2}' /tmp/bench-broker.$$)
        r=$(node probe/bench-client.mjs $port $qos $n)
        echo "{\"aedes\":$v,\"persistence\":\"$pers\",\"run\":$run,\"result\":$r}" | tee -a bench-results.jsonl
        kill $bp; wait $bp 2>/dev/null
      done
    done
  done
done
node probe/bench-summary.cjs
