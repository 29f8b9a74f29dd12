import type { DeliveryRow } from './delivery.js'

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd']

/** One line of a chart: its name and its points (x, y), both positive. */
export interface Series { name: string, points: Array<[number, number]> }

/**
 * An SVG line chart on log scales in both directions: durations from milliseconds to minutes,
 * and delays or dollars over several orders of magnitude, all readable on one chart.
 */
export function logLogChart (options: { title: string, xLabel: string, xTick: (x: number) => string, yTick: (y: number) => string, series: Series[] }): string {
  const width = 640
  const height = 360
  const pad = { left: 80, right: 20, top: 30, bottom: 50 }
  const xs = [...new Set(options.series.flatMap(line => line.points.map(([x]) => x)))].sort((a, b) => a - b)
  const ys = options.series.flatMap(line => line.points.map(([, y]) => Math.max(y, 1e-9)))
  const [minX, maxX] = [Math.log10(xs[0] as number), Math.log10(xs.at(-1) as number)]
  const [minY, maxY] = [Math.floor(Math.log10(Math.min(...ys))), Math.ceil(Math.log10(Math.max(...ys)))]
  const x = (value: number): number => pad.left + (Math.log10(value) - minX) / (maxX - minX || 1) * (width - pad.left - pad.right)
  const y = (value: number): number => height - pad.bottom - (Math.log10(Math.max(value, 1e-9)) - minY) / (maxY - minY || 1) * (height - pad.top - pad.bottom)
  const lines = options.series.map((line, i) => {
    const color = COLORS[i % COLORS.length] as string
    return `<polyline fill="none" stroke="${color}" stroke-width="2" points="${line.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ')}"/>` +
      `<text x="${pad.left + 10}" y="${pad.top + 16 * i}" fill="${color}" font-size="12">${line.name}</text>`
  })
  const xTicks = xs.map(value => `<text x="${x(value).toFixed(1)}" y="${height - pad.bottom + 18}" font-size="11" text-anchor="middle">${options.xTick(value)}</text>`)
  const yTicks = Array.from({ length: maxY - minY + 1 }, (_, i) => 10 ** (minY + i))
    .map(value => `<text x="${pad.left - 8}" y="${(y(value) + 4).toFixed(1)}" font-size="11" text-anchor="end">${options.yTick(value)}</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.left}" y="18" font-size="13">${options.title}</text>
<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#888"/>
<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="#888"/>
${xTicks.join('\n')}
${yTicks.join('\n')}
${lines.join('\n')}
<text x="${width / 2}" y="${height - 12}" font-size="12" text-anchor="middle">${options.xLabel}</text>
</svg>
`
}

/** Median delivery delay against job duration, one line per scheme (delays under 1 ms drawn at 1 ms). */
export function deliveryChart (rows: DeliveryRow[], schemes: string[]): string {
  return logLogChart({
    title: 'Delivery delay (median, ms, log scale) after the job\'s end, by job duration (waitSeconds 1)',
    xLabel: 'job duration (log scale)',
    xTick: seconds => `${seconds}s`,
    yTick: ms => String(ms),
    series: schemes.map(scheme => ({ name: scheme, points: rows.filter(row => row.scheme === scheme).map(row => [row.seconds, Math.max(1, row.p50)]) }))
  })
}
