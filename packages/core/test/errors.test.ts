import t from 'tap';
import { ErrorCodes, MdError, isMdError } from '../src/errors.js';

t.test('MdError keeps code, default message and cause', async (t) => {
  const cause = new Error('root');
  const e = new MdError('MD_ERR_PARSE_TYPE', undefined, { cause });
  t.equal(e.code, 'MD_ERR_PARSE_TYPE');
  t.equal(e.message, ErrorCodes.MD_ERR_PARSE_TYPE);
  t.equal(e.cause, cause);
  t.ok(isMdError(e, 'MD_ERR_PARSE_TYPE'));
  t.notOk(isMdError(e, 'MD_ERR_PARSE_RATE'));
  t.notOk(isMdError(new Error('x')));
});

t.test('every code follows MD_ERR_<AREA>_<WHAT>', async (t) => {
  for (const code of Object.keys(ErrorCodes)) t.match(code, /^MD_ERR_[A-Z]+_[A-Z_]+$/);
});
