/** What the tools (enqueue, doctor, redrive) write to: process.stdout/stderr, or a capture in tests. */
export type Output = NodeJS.WritableStream & { readonly isTTY?: boolean };
