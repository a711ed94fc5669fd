/**
 * Loaded into every test process after tap's own hooks (.taprc node-arg): the Node processes a test starts
 * (runtimes, CLIs, plugin processes, crash children) start as a user's would, without tap's processinfo
 * loader. tap puts that loader into the NODE_OPTIONS of the test process and, through process-on-spawn,
 * into the environment of every child it sees spawned, whatever environment the test gives; in a child
 * that loads the runtime it records and measures every module it loads, for coverage this suite does not
 * collect (.taprc: disable-coverage), and makes the start markedly slower. tsx still turns source maps on
 * in children run from the sources, so their stack traces keep TypeScript positions.
 *
 * process-on-spawn keeps its listeners in a global singleton (the key below), which is how every copy of
 * it shares one list; when the key is absent (a tap without it) there is nothing to undo.
 */
const PROCESS_ON_SPAWN = Symbol.for('process-on-spawn@*:singletonId');

const state = (globalThis as { [PROCESS_ON_SPAWN]?: { listeners?: unknown[] } })[PROCESS_ON_SPAWN];
if (Array.isArray(state?.listeners)) state.listeners.length = 0;
delete process.env.NODE_OPTIONS;
