/**
 * Imported first by every bench child: a child has no work without the bench that forked it, so
 * when the IPC channel closes (the bench exited, however it exited, SIGKILL included) it exits
 * too, instead of reconnecting to a broker that is gone for ever.
 */
process.once("disconnect", () => process.exit(1));
