// A tiny etsy statsd backend for the benchmark: at every flush it writes one JSON line on stdout with
// the totals of the counters whose key starts with `config.benchBackend.prefix`, and the timer counts
// (Σ 1/sample rate) of timers whose key starts with `config.benchBackend.timerPrefix` (default: prefix).
// etsy's `metrics.counters[key]` is the count in that flush interval (counter_rates holds the rate).
// Written with writeSync so the final flush etsy runs from its 'exit' handler (after SIGTERM) is
// never lost.
'use strict';
const { writeSync } = require('node:fs');

exports.init = function init(_startupTime, config, events) {
  const prefix = (config.benchBackend && config.benchBackend.prefix) || 'bench.';
  const timerPrefix = (config.benchBackend && config.benchBackend.timerPrefix) || prefix;
  events.on('flush', (ts, metrics) => {
    let counters = 0;
    let counterKeys = 0;
    for (const key in metrics.counters) {
      if (!key.startsWith(prefix)) continue;
      counters += metrics.counters[key];
      counterKeys++;
    }
    let timerCount = 0;
    for (const key in metrics.timer_counters) if (key.startsWith(timerPrefix)) timerCount += metrics.timer_counters[key];
    const c = metrics.counters;
    writeSync(1, `${JSON.stringify({
      ts,
      counters,
      counterKeys,
      timerCount,
      packets: c['statsd.packets_received'] || 0,
      metrics: c['statsd.metrics_received'] || 0,
      bad: c['statsd.bad_lines_seen'] || 0,
    })}\n`);
  });
  return true;
};
