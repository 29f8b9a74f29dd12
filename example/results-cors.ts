import { readFileSync } from 'node:fs'
import type { CORSRule } from '@aws-sdk/client-s3'
import { parse } from 'yaml'

interface TemplateCorsRule {
  AllowedMethods: string[]
  AllowedOrigins: string[]
  AllowedHeaders?: string[]
  ExposedHeaders?: string[]
  MaxAge?: number
}

/**
 * The results bucket's CORS rules as `example/template.yaml` declares them, in the SDK's shape
 * (`PutBucketCors`): `npm run dev:aws` gives its S3 emulator the very rules AWS would apply.
 */
export function templateCorsRules (): CORSRule[] {
  // The template's CloudFormation tags (`!Ref`, `!Sub`) stay unresolved: the CORS rules use none.
  const template = parse(readFileSync(new URL('template.yaml', import.meta.url), 'utf8'), { logLevel: 'silent' }) as {
    Resources: { ResultsBucket: { Properties: { CorsConfiguration: { CorsRules: TemplateCorsRule[] } } } }
  }
  return template.Resources.ResultsBucket.Properties.CorsConfiguration.CorsRules.map(rule => ({
    AllowedMethods: rule.AllowedMethods,
    AllowedOrigins: rule.AllowedOrigins,
    AllowedHeaders: rule.AllowedHeaders,
    ExposeHeaders: rule.ExposedHeaders,
    MaxAgeSeconds: rule.MaxAge
  }))
}
