// The hooks of ts-loader.mjs. Sources import each other as `./x.js` (NodeNext), which is
// `./x.ts` here; a query (`lambda.js?waiting`: a second instance of a module) is kept.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { transform } from 'esbuild'

// What of tsconfig.json changes the emitted code: class fields as ES2022 defines them (tsc's
// default for its target ES2022), imports kept as written.
const TSCONFIG = { compilerOptions: { target: 'ES2022', verbatimModuleSyntax: true } }
const TS_URL = /^file:[^?#]*\.ts(?=[?#]|$)/
const RELATIVE_JS = /^\.\.?\/[^?#]*\.js(?=[?#]|$)/

export async function resolve (specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context)
  } catch (error) {
    const js = RELATIVE_JS.exec(specifier)
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || js === null || !TS_URL.test(context.parentURL ?? '')) throw error
    return await nextResolve(`${js[0].slice(0, -3)}.ts${specifier.slice(js[0].length)}`, context)
  }
}

export async function load (url, context, nextLoad) {
  const ts = TS_URL.exec(url)
  if (ts === null || url.includes('/node_modules/')) return await nextLoad(url, context)
  const path = fileURLToPath(ts[0])
  const { code } = await transform(await readFile(path, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    sourcesContent: false,
    sourcefile: path,
    tsconfigRaw: TSCONFIG
  })
  return { format: 'module', source: code, shortCircuit: true }
}
