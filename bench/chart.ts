import type { DeliveryRow } from './delivery.js'

/** An SVG line chart of median delivery delay against job duration (both log scales), one line per scheme. */
export function deliveryChart (rows: DeliveryRow[], schemes: string[]): string {
  const width = 640
  const height = 360
  const pad = { left: 70, right: 20, top: 30, bottom: 50 }
  const durations = [...new Set(rows.map(row => row.seconds))].sort((a, b) => a - b)
  // Log scale from 1 ms: milliseconds and seconds of delay both stay readable.
  const maxPower = Math.ceil(Math.log10(Math.max(...rows.filter(row => schemes.includes(row.scheme)).map(row => row.p50), 100)))
  const x = (seconds: number): number => pad.left + (Math.log10(seconds) - Math.log10(durations[0] as number)) /
    (Math.log10(durations.at(-1) as number) - Math.log10(durations[0] as number) || 1) * (width - pad.left - pad.right)
  const y = (ms: number): number => height - pad.bottom - (Math.log10(Math.max(1, ms)) / maxPower) * (height - pad.top - pad.bottom)
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd']
  const lines = schemes.map((scheme, i) => {
    const points = rows.filter(row => row.scheme === scheme).map(row => `${x(row.seconds).toFixed(1)},${y(row.p50).toFixed(1)}`)
    return `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${points.join(' ')}"/>` +
      `<text x="${pad.left + 10}" y="${pad.top + 16 * i}" fill="${colors[i % colors.length]}" font-size="12">${scheme}</text>`
  })
  const ticks = durations.map(seconds => `<text x="${x(seconds)}" y="${height - pad.bottom + 18}" font-size="11" text-anchor="middle">${seconds}s</text>`)
  const yTicks = Array.from({ length: maxPower + 1 }, (_, power) => `<text x="${pad.left - 8}" y="${y(10 ** power) + 4}" font-size="11" text-anchor="end">${10 ** power}</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.left}" y="18" font-size="13">Delivery delay (median, ms, log scale) after the job's end, by job duration (waitSeconds 1)</text>
<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#888"/>
<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="#888"/>
${ticks.join('\n')}
${yTicks.join('\n')}
${lines.join('\n')}
<text x="${width / 2}" y="${height - 12}" font-size="12" text-anchor="middle">job duration (log scale)</text>
</svg>
`
}
