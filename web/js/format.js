// Formatting and calendar helpers. All dates are in the browser's time zone,
// which is also the zone the charts ask the server to bucket by.

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

const kwhFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const kwhFine = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const hourMinute = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const longDate = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
const monthYear = new Intl.DateTimeFormat(undefined, { month: 'long', year: 'numeric' });
const dayMonth = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function kwh(value) {
  return `${kwhFormat.format(value)} kWh`;
}

// A kWh figure without the unit, two decimals ("0.70").
export function fixed(value) {
  return kwhFormat.format(value);
}

export function number(value) {
  return kwhFine.format(value);
}

export function formatDateTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

export function formatHour(date) {
  return hourMinute.format(date);
}

export function formatLongDate(date) {
  return longDate.format(date);
}

export function formatMonth(date) {
  return monthYear.format(date);
}

export function formatDayMonth(date) {
  return dayMonth.format(date);
}

const STEPS = [
  [60, 'second'],
  [60, 'minute'],
  [24, 'hour'],
  [7, 'day'],
  [4.345, 'week'],
  [12, 'month'],
  [Infinity, 'year'],
];

// "3 minutes ago", "yesterday"; "never" for a missing time.
export function timeAgo(iso, now = Date.now()) {
  if (!iso) {
    return 'never';
  }
  let value = (new Date(iso).getTime() - now) / 1000;
  if (Math.abs(value) < 10) {
    return 'just now';
  }
  for (const [size, unit] of STEPS) {
    if (Math.abs(value) < size) {
      return relative.format(Math.round(value), unit);
    }
    value /= size;
  }
  return relative.format(Math.round(value), 'year');
}

function pad(n) {
  return String(n).padStart(2, '0');
}

// Local calendar dates as "YYYY-MM-DD" (what <input type=date> and the API use).
export function isoDate(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function isoMonth(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}`;
}

// Parses "YYYY-MM-DD" or "YYYY-MM" as local midnight of that day (or the
// month's first day); null when malformed.
export function parseLocalDate(text) {
  const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(text || '');
  if (!m) {
    return null;
  }
  const date = new Date(Number(m[1]), Number(m[2]) - 1, m[3] ? Number(m[3]) : 1);
  return Number.isNaN(date.getTime()) || date.getMonth() !== Number(m[2]) - 1 ? null : date;
}

export function addDays(date, days) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate() + days);
}

export function addMonths(date, months) {
  return new Date(date.getFullYear(), date.getMonth() + months, 1);
}

export function startOfMonth(date) {
  return new Date(date.getFullYear(), date.getMonth(), 1);
}

// An instant as RFC 3339 in UTC, whole seconds ("2026-11-21T10:00:00Z").
export function rfc3339(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function startOfUtcHour(date = new Date()) {
  const d = new Date(date.getTime());
  d.setUTCMinutes(0, 0, 0);
  return d;
}
