import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'coverage/**', '.tap/**', '.aws-sam/**']
  }),
  {
    rules: {
      // `void promise` marks a deliberately detached promise whose errors are handled inside.
      'no-void': ['error', { allowAsStatement: true }],
      // A status object `as const` and its union type share one name, on purpose.
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
