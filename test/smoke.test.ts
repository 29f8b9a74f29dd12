import t from 'tap'
import { isJobId, newJobId } from '../src/job/id.js'
t.ok(isJobId(newJobId()))
