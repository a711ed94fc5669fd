// Test fixture: a subset of node-basic, run as a child process (isolation: process).
const instance = `${process.pid}:${Date.now()}`;

export default {
  tools: {
    add: ({ a, b }) => ({ sum: a + b }),
    hang: () => {
      for (;;) {
        // spin
      }
    },
    exit: () => process.exit(4),
    throws: () => {
      throw new Error('boom in a process');
    },
    whoami: () => ({ instance, pid: process.pid }),
  },
};
