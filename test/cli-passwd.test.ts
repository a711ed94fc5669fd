/**
 * `clawbox passwd` on a real terminal: a pseudo-terminal driven by python3's pty module, since what
 * matters (no echo, raw-mode Ctrl-C and Ctrl-D, the terminal restored) only happens on a TTY.
 */
import t from 'tap';
import { verifyPassword } from '../runtime/auth/password.js';
import { ptySkipReason, runCli, runCliInPty } from './cli-helpers.js';

t.test('passwd on a terminal asks twice without echo', { skip: ptySkipReason() }, async (t) => {
  const secret = 'correct horse battery';
  const result = await runCliInPty(['passwd'], [
    { expect: 'Password: ', send: `${secret}\r` },
    { expect: 'Repeat password: ', send: `${secret}\r` },
  ]);
  t.notOk(result.timedOut, result.output);
  t.equal(result.code, 0, result.output);
  t.notMatch(result.output, /horse/, 'the password is not echoed');
  const hash = /scrypt\$\S+/.exec(result.output)?.[0];
  t.ok(hash && (await verifyPassword(secret, hash)), 'the printed hash verifies');
  t.notOk(hash && (await verifyPassword('wrong horse battery', hash)));
  t.equal(result.echoAfter, true, 'the terminal echoes again afterwards');

  // A paste of both answers at once, with a backspace and an arrow key in it.
  const pasted = await runCliInPty(['passwd'], [
    { expect: 'Password: ', send: `${secret}X\u007f\u001b[D\r${secret}\r` },
  ]);
  t.equal(pasted.code, 0, pasted.output);
  const pastedHash = /scrypt\$\S+/.exec(pasted.output)?.[0];
  t.ok(pastedHash && (await verifyPassword(secret, pastedHash)), 'backspace and arrow keys are not part of the password');
});

t.test('passwd on a terminal: mismatch, short, Ctrl-D and Ctrl-C end cleanly', { skip: ptySkipReason() }, async (t) => {
  const mismatch = await runCliInPty(['passwd'], [
    { expect: 'Password: ', send: 'correct horse battery\r' },
    { expect: 'Repeat password: ', send: 'correct horse battery!\r' },
  ]);
  t.equal(mismatch.code, 64, mismatch.output);
  t.match(mismatch.output, /clawbox: USAGE: the two passwords do not match/);
  t.notMatch(mismatch.output, /scrypt\$/);

  const short = await runCliInPty(['passwd'], [{ expect: 'Password: ', send: 'short\r' }]);
  t.equal(short.code, 64, short.output);
  t.match(short.output, /USAGE: password must be at least 8 characters/);
  t.notMatch(short.output, /Repeat/, 'refused before asking again');

  const eof = await runCliInPty(['passwd'], [{ expect: 'Password: ', send: '\u0004' }]);
  t.equal(eof.code, 64, eof.output);
  t.match(eof.output, /clawbox: USAGE: no password entered/);

  const interrupted = await runCliInPty(['passwd'], [{ expect: 'Password: ', send: 'correct hor\u0003' }]);
  t.equal(interrupted.code, 130, `ends as an interrupted command does\n${interrupted.output}`);
  t.notMatch(interrupted.output, /hor|scrypt|INTERNAL|\n\s+at /);
  t.equal(interrupted.echoAfter, true, 'the terminal echoes again afterwards');
});

t.test('passwd from a pipe reads stdin; endless input is refused', async (t) => {
  const piped = await runCli(['passwd'], { input: 'correct horse battery' });
  t.equal(piped.code, 0);
  t.ok(await verifyPassword('correct horse battery', piped.stdout.trim()));
  const endless = await runCli(['passwd'], { input: 'x'.repeat(64 * 1024) });
  t.equal(endless.code, 64, endless.stderr);
  t.match(endless.stderr, /^clawbox: USAGE: password must be at most 1024 characters\n$/);
});
