// tap's TypeScript loader (package.json "tap": "node-arg"), in place of its ts-node plugin:
// esbuild strips the types of each file as Node loads it, in milliseconds, where ts-node loads
// the TypeScript compiler into every test process (about 3 s of CPU each, 70 processes per
// `npm test`). Type-checking is `npm run typecheck`'s. The code is kept line for line (no
// minification, unlike tsx's), so that the coverage maps back onto the sources exactly.
import { register } from 'node:module'

register('./ts-hooks.mjs', import.meta.url)
