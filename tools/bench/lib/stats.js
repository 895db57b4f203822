'use strict';
// stats: percentiles and small formatting helpers shared by the scenarios.

// Nearest-rank percentile of an ascending array (p in 0..100); NaN when empty.
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

// {count, p50, p99, max, mean} of a list of numbers (copied, not modified).
function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  };
}

// 12345.6 -> "12,346"; small values keep `digits` decimals.
function num(value, digits = 0) {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
}

function ms(value, digits = 2) {
  return Number.isFinite(value) ? `${num(value, digits)} ms` : 'n/a';
}

function mib(kib, digits = 1) {
  return Number.isFinite(kib) ? `${num(kib / 1024, digits)} MiB` : 'n/a';
}

function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}

function sleep(msDelay) {
  return new Promise((resolve) => setTimeout(resolve, msDelay));
}

module.exports = { mib, ms, num, percentile, ratio, sleep, summarize };
