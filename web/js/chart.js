// Bar chart on uPlot (vendored, see /vendor/uplot/LICENSE).
//
// Buckets are drawn on an ordinal x axis (0..n-1) labelled from the buckets'
// start times, so 23- and 25-hour DST days and 28..31-day months need no
// special cases. Bars over the limit are a second series in the warning
// colour; the hourly limit is a dashed line across the plot. Colours come
// from CSS custom properties, so the chart follows light and dark mode.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { number } from './format.js';

const dark = window.matchMedia('(prefers-color-scheme: dark)');

function palette() {
  const css = getComputedStyle(document.documentElement);
  const get = (name) => css.getPropertyValue(name).trim();
  return {
    bar: get('--chart-bar'),
    over: get('--chart-over'),
    limit: get('--chart-limit'),
    axis: get('--text-muted'),
    grid: get('--chart-grid'),
  };
}

// The smallest label step that leaves `minPx` between labels.
function labelStep(count, plotWidth, steps, minPx) {
  const slot = plotWidth / Math.max(1, count);
  return steps.find((step) => slot * step >= minPx) || steps[steps.length - 1];
}

function chartHeight(container) {
  return container.clientWidth < 560 ? 230 : 320;
}

// barChart(el, {unit: 'Hour' | 'Day', labelSteps}) → {update(data), destroy()}
// data: {labels: short axis labels, titles: long labels for the legend,
//        kwh: numbers, over: booleans (or null), limit: number | null}
export function barChart(container, { unit, labelSteps }) {
  let data = { labels: [], titles: [], kwh: [], over: [], limit: null };
  let plot = null;
  const dpr = () => window.devicePixelRatio || 1;

  const drawLimit = (u) => {
    if (data.limit === null || !data.kwh.length) {
      return;
    }
    const colors = palette();
    const y = Math.round(u.valToPos(data.limit, 'y', true));
    const { left, width } = u.bbox;
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = colors.limit;
    ctx.lineWidth = 2 * dpr();
    ctx.setLineDash([6 * dpr(), 4 * dpr()]);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = colors.limit;
    ctx.font = `${12 * dpr()}px system-ui, sans-serif`;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'bottom';
    ctx.fillText(`limit ${number(data.limit)} kWh`, left + width - 4 * dpr(), y - 3 * dpr());
    ctx.restore();
  };

  const series = (colors) => {
    const bars = uPlot.paths.bars({ size: [0.72, 64], gap: 1 });
    const kwhValue = (u, v) => (v === null || v === undefined ? '—' : `${number(v)} kWh`);
    const list = [
      { label: unit, value: (u, i) => (i === null || i === undefined ? '—' : data.titles[i] || '') },
      { label: data.limit === null ? 'Energy' : 'Within limit', fill: colors.bar, stroke: colors.bar, width: 0, paths: bars, points: { show: false }, value: kwhValue },
    ];
    if (data.limit !== null) {
      list.push({ label: 'Over limit', fill: colors.over, stroke: colors.over, width: 0, paths: bars, points: { show: false }, value: kwhValue });
    }
    return list;
  };

  const options = () => {
    const colors = palette();
    return {
      width: container.clientWidth,
      height: chartHeight(container),
      padding: [16, 8, 0, 0],
      cursor: { drag: { x: false, y: false, setScale: false }, points: { show: false } },
      legend: { show: true, live: true },
      scales: {
        x: { time: false, range: () => [-0.5, Math.max(0, data.kwh.length - 0.5)] },
        y: {
          range: (u, min, max) => {
            const top = Math.max(max || 0, data.limit || 0);
            return [0, top > 0 ? top * 1.15 : 1];
          },
        },
      },
      axes: [
        {
          stroke: colors.axis,
          grid: { show: false },
          ticks: { show: false },
          splits: (u) => {
            const step = labelStep(data.kwh.length, u.bbox.width / dpr(), labelSteps, 34);
            return data.kwh.map((_, i) => i).filter((i) => i % step === 0);
          },
          values: (u, splits) => splits.map((i) => data.labels[i] ?? ''),
        },
        {
          stroke: colors.axis,
          grid: { stroke: colors.grid, width: 1 },
          ticks: { show: false },
          size: 52,
          values: (u, splits) => splits.map((v) => number(v)),
          label: 'kWh',
          labelSize: 18,
        },
      ],
      series: series(colors),
      hooks: { draw: [drawLimit] },
    };
  };

  const columns = () => {
    const xs = data.kwh.map((_, i) => i);
    if (data.limit === null) {
      return [xs, data.kwh];
    }
    return [
      xs,
      data.kwh.map((v, i) => (data.over[i] ? null : v)),
      data.kwh.map((v, i) => (data.over[i] ? v : null)),
    ];
  };

  const build = () => {
    if (plot) {
      plot.destroy();
    }
    plot = new uPlot(options(), columns(), container);
    plot.root.querySelector('canvas').setAttribute('aria-hidden', 'true');
  };

  const resizer = new ResizeObserver(() => {
    if (plot && container.clientWidth > 0) {
      plot.setSize({ width: container.clientWidth, height: chartHeight(container) });
    }
  });
  resizer.observe(container);
  dark.addEventListener('change', build);

  return {
    update(next) {
      // A change between "has a limit" and "has none" changes the series.
      const rebuild = !plot || (next.limit === null) !== (data.limit === null);
      data = next;
      if (rebuild) {
        build();
      } else {
        plot.setData(columns());
      }
    },
    destroy() {
      resizer.disconnect();
      dark.removeEventListener('change', build);
      if (plot) {
        plot.destroy();
        plot = null;
      }
    },
  };
}
